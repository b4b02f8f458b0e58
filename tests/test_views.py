"""The note page: a note's Markdown rendered on the server, with nothing in it trusted."""
import re

import pytest

from app.views import note_html, opening, post_page, safe_href
from ingest.read import Post

NOTE = """# 标题

**梯度检查点**用*重计算*换显存，见 `torch.utils.checkpoint` 与 [文档](https://pytorch.org/docs)。

- 第一项
- 第二项
  1. 嵌套的一项

| 方法 | 显存 |
|:--|--:|
| 全部保存 | 高 |

```python
print("<b>不是标签</b>")
```

> 引用的一句话

公式 $s_t = \\gamma s_{t-1}$ 与

$$
\\frac{1}{2}
$$

<script>alert('block')</script>

<div onclick="alert(1)">块级 HTML</div>

行内 <img src=x onerror=alert('img')> 与 <!-- 注释 --> 结束。

[脚本](javascript:alert('js')) [大写](JavaScript:alert(1)) [数据](data:text/html,x) [相对](../其他笔记.md)
[邮件](mailto:me@example.com) ![远程图片](https://example.com/remote.png) ![](data:image/png;base64,AAAA)

<!--
注释里的段落
-->
"""


@pytest.fixture(scope="module")
def html() -> str:
    return note_html(Post("p", "标题", NOTE))


def test_markdown_is_rendered(html: str) -> None:
    assert "<strong>梯度检查点</strong>" in html and "<em>重计算</em>" in html
    assert "<code>torch.utils.checkpoint</code>" in html
    assert "<li>第一项</li>" in html and "<ol>\n<li>嵌套的一项</li>" in html
    assert "<table>" in html and '<th class="align-left">方法</th>' in html and '<td class="align-right">高</td>' in html
    assert '<pre><code class="language-python">print(&quot;&lt;b&gt;不是标签&lt;/b&gt;&quot;)' in html
    assert "<blockquote>\n<p>引用的一句话</p>" in html
    assert '<span class="math">$s_t = \\gamma s_{t-1}$</span>' in html and '<div class="math">$$\\frac{1}{2}$$</div>' in html
    assert '<a href="https://pytorch.org/docs" rel="noopener noreferrer">文档</a>' in html


def test_the_heading_that_repeats_the_title_is_left_out_and_others_go_one_level_down() -> None:
    html = note_html(Post("p", "标题", "# 标题\n\n## 小节\n\n正文"))
    assert "<h1>" not in html and "标题" not in html and "<h3>小节</h3>" in html


def test_raw_html_is_text_and_comments_stay_hidden(html: str) -> None:
    assert "<script" not in html and "<div onclick" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#x27;block&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert('img')&gt;" in html
    assert "注释" not in html


def test_only_safe_links_are_links_and_images_are_never_fetched(html: str) -> None:
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == [
        "https://pytorch.org/docs", "../%E5%85%B6%E4%BB%96%E7%AC%94%E8%AE%B0.md", "mailto:me@example.com",
        "https://example.com/remote.png",
    ]
    assert not re.search(r"(?i)(href|src)=\"\s*(javascript|data):", html)
    assert not re.search(r"<(img|iframe|script|object|embed|video|audio|source)\b", html)  # nothing is loaded
    assert "脚本" in html and "大写" in html and "数据" in html  # unsafe links keep their text
    assert '<a class="image" href="https://example.com/remote.png" rel="noopener noreferrer">远程图片</a>' in html


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://a.b/c", True), ("http://a", True), ("mailto:x@y", True), ("/posts/x", True), ("x.md#h", True),
        ("#frag", True), ("javascript:alert(1)", False), (" JavaScript:x", False), ("java\tscript:x", False),
        ("\x01javascript:x", False), ("data:text/html,x", False), ("vbscript:x", False), ("file:///etc/passwd", False),
    ],
)
def test_safe_href(url: str, safe: bool) -> None:
    assert (safe_href(url) == url) is safe


def test_related_notes_show_what_tells_them_apart() -> None:
    a = Post("a", "C-专题-优化算法", "**几何理解**\n\n- 牛顿法用二次曲面拟合局部曲面。")
    b = Post("b", "C-专题-优化算法", "## 动量\n\n动量让更新保持惯性。")
    page = post_page(Post("p", "P", "正文"), [(a, 0.9), (b, 0.8)])
    assert opening(a) == "几何理解" and opening(b) == "动量"
    assert '<span class="related-opening">几何理解</span>' in page and '<span class="related-opening">动量</span>' in page
    long = Post("c", "T", "这是一段很长的开头文字，" * 10)
    assert opening(long).endswith("…") and len(opening(long)) <= 48


def test_an_opening_skips_a_reference_line() -> None:
    note = Post("d", "T", "> [某篇博客](https://example.com) - 作者 - 博客园\n\n正文的第一句话说明了主题。")
    assert opening(note) == "正文的第一句话说明了主题。"


def test_an_opening_does_not_repeat_a_title_taken_from_the_first_sentence() -> None:
    note = Post("e", "简介 如果以概率的视角看待世界的…", "简介 如果以概率的视角看待世界的生成模型。在这样的世界观中，数据来自一个分布。")
    assert opening(note) == "生成模型。在这样的世界观中，数据来自一个分布。"


def test_an_opening_after_a_title_does_not_start_with_its_comma() -> None:
    note = Post("f", "一般来说,神经网络处理的东西都是连续的浮点数", "一般来说,神经网络处理的东西都是连续的浮点数,标准的输出也是连续型的数字。")
    assert opening(note) == "标准的输出也是连续型的数字。"
