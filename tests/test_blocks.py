"""Markdown -> blocks -> sentences: what is searched, what may answer, and that no markup gets through."""
import pytest

from ingest.blocks import CODE, FIGURE, HEADING, ITEM, LABEL, MATH, PARAGRAPH, QUOTE, TABLE, blocks, plain_text
from ingest.chunk import chunk
from ingest.read import Post


def answers(markdown: str) -> list[str]:
    """Every sentence the note offers to answers, in order."""
    return [s for c in chunk(Post("p", "标题", markdown), 450, 140) for s in c.answers]


def texts(markdown: str) -> str:
    return "\n".join(c.text for c in chunk(Post("p", "标题", markdown), 450, 140))


def test_bold_code_and_links_inside_chinese_sentences_leave_only_their_text() -> None:
    note = (
        "**梯度检查点**（Gradient Checkpointing）用[重计算](https://example.com/recompute)换显存。"
        "它只保存*部分*激活值，见 `torch.utils.checkpoint`。"
    )
    assert answers(note) == [
        "梯度检查点（Gradient Checkpointing）用重计算换显存。",
        "它只保存部分激活值，见 torch.utils.checkpoint。",
    ]
    assert "example.com" not in texts(note)


def test_each_list_item_is_a_unit_of_its_own_at_any_depth() -> None:
    note = "- 第一项的说明。\n  - 子项甲\n  - 子项乙\n- 第二项是一个完整的句子。"
    assert [(b.kind, b.level, b.text) for b in blocks(note)] == [
        (ITEM, 1, "第一项的说明。"), (ITEM, 2, "子项甲"), (ITEM, 2, "子项乙"), (ITEM, 1, "第二项是一个完整的句子。"),
    ]
    assert answers(note) == ["第一项的说明。", "子项甲", "子项乙", "第二项是一个完整的句子。"]
    assert texts(note) == "第一项的说明。\n子项甲\n子项乙\n第二项是一个完整的句子。"


def test_a_lead_in_answers_together_with_the_list_it_introduces() -> None:
    note = "Adam 的更新分三步，如下：\n\n1. 计算一阶矩\n2. 计算二阶矩\n3. 修正偏差并更新参数\n\n之后的段落照常回答问题。"
    assert answers(note) == ["Adam 的更新分三步，如下：计算一阶矩；计算二阶矩；修正偏差并更新参数", "之后的段落照常回答问题。"]


def test_a_lead_in_too_long_to_join_its_list_never_answers_alone() -> None:
    items = "".join(f"- 第{i}条是一句相当长的说明文字，用来把整段撑到超过上限为止，它本身可以回答问题。\n" for i in range(8))
    note = f"下面列出常见的做法：\n\n{items}"
    assert "下面列出常见的做法：" not in answers(note)
    assert len(answers(note)) == 8
    assert texts(note).startswith("下面列出常见的做法：\n第0条")  # still searchable


def test_a_lead_in_answers_together_with_its_formula() -> None:
    note = "RMSProp 在时间步 $t$ 计算：\n\n$$\ns_t = \\gamma s_{t-1} + (1-\\gamma) g_t^2\n$$\n\n其中 $\\gamma$ 通常取 0.9。"
    assert answers(note) == [
        "RMSProp 在时间步 $t$ 计算：$$s_t = \\gamma s_{t-1} + (1-\\gamma) g_t^2$$",
        "其中 $\\gamma$ 通常取 0.9。",
    ]


def test_math_stays_tex_and_is_never_split() -> None:
    note = "这是关于 $a. b$ 的句子。行内公式 $$\\sum_i x_i. y$$ 也是。"
    assert answers(note) == ["这是关于 $a. b$ 的句子。", "行内公式 $$\\sum_i x_i. y$$ 也是。"]
    assert [b.kind for b in blocks("$$\nx^2\n$$")] == [MATH]


def test_tables_code_and_reference_lists_are_searchable_but_never_answer() -> None:
    note = (
        "| 英文 | 中文 |\n|---|---|\n| gradient | 梯度 |\n\n"
        "```python\nloss.backward()  # 反向传播\n```\n\n"
        "> [深入理解 Batch Normalization](https://www.cnblogs.com/x) - 郭耀华 - 博客园\n\n"
        "## 参考\n\n- [论文](https://arxiv.org/abs/1502.03167)\n- 一条写成句子的参考说明，也不回答问题。"
    )
    kinds = [(b.kind, b.answers) for b in blocks(note)]
    assert kinds == [(TABLE, False), (CODE, False), (QUOTE, False), (HEADING, False), (ITEM, False), (ITEM, False)]
    assert answers(note) == []
    text = texts(note)
    assert "gradient · 梯度" in text and "loss.backward()" in text and "深入理解 Batch Normalization" in text
    assert "https://" not in text and "|" not in text and "```" not in text
    assert blocks(note)[0].rows == (("英文", "中文"), ("gradient", "梯度"))


def test_raw_html_loses_its_tags_and_scripts_their_content() -> None:
    note = "正文开始。<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n安全的<b>加粗</b>文字 &amp; 实体。\n\n<div>块里的<i>文字</i></div>"
    assert answers(note) == ["正文开始。", "安全的加粗文字 & 实体。", "块里的文字"]
    assert [b.kind for b in blocks(note)] == [PARAGRAPH, FIGURE, PARAGRAPH, PARAGRAPH]
    assert "alert" not in plain_text(note) and "<" not in plain_text(note)


def test_a_javascript_link_keeps_only_its_text() -> None:
    assert answers("点击[这里](javascript:alert(1))查看详情。") == ["点击这里查看详情。"]


def test_an_emphasised_line_is_a_label_and_a_commented_out_note_only_searchable() -> None:
    note = "**万能近似定理**\n\n- 神经网络可以以任意精度近似任何函数。\n\n<!--\n- 草稿里的一句话，读者看不到。\n-->"
    assert [(b.kind, b.answers) for b in blocks(note)] == [(LABEL, False), (ITEM, True), (ITEM, False)]
    assert answers(note) == ["神经网络可以以任意精度近似任何函数。"]
    assert "草稿里的一句话" in texts(note)


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("**要点", "要点"),  # an unmatched delimiter is markup all the same
        ("- *最大池化（Max pooling）", "最大池化（Max pooling）"),
        ("经验公式 `n ** 0.25`", "经验公式 n ** 0.25"),  # code is kept as written
        ("幂运算 x ** 2 照写", "幂运算 x ** 2 照写"),
        ("参见 https://example.com/a_b 与 <https://x.y>。", "参见 与 。"),
        ("![网络结构图](https://example.com/net.png)", "网络结构图"),
        ("第一行\n第二行 English\nwords", "第一行第二行 English words"),
    ],
)
def test_plain_text(markdown: str, text: str) -> None:
    assert plain_text(markdown) == text


def test_flattened_list_numbers_start_sentences_and_stay_out_of_answers() -> None:
    note = "假如我们有N张显卡, 1. (缓解GIL限制)每张卡上有一个进程。 1. (RingReduce加速)各进程交换梯度;"
    assert answers(note) == ["假如我们有N张显卡,", "(缓解GIL限制)每张卡上有一个进程。", "(RingReduce加速)各进程交换梯度;"]
    assert texts(note) == note  # the passage keeps the note's own text and spacing


@pytest.mark.parametrize(
    "line",
    [
        "> [逻辑回归推导](https://www.cnblogs.com/x) - 罐装可乐 - 博客园",  # a link and its attribution
        "> ./机器学习基础/[偏差与方差](./ML-A-机器学习基础.md#偏差与方差)",  # a path to another note
        "> [44. 如何理解维数灾难？](#44-如何理解维数灾难)",
        "> 《深度学习》 6.4.1 万能近似性质和深度",  # a book and its section
        "> Ioffe and Szegedy, 2015, Batch Normalization: Accelerating Deep Network Training",  # a paper
        "**梯度下降法**与**反向传播算法**",  # emphasis all but a word: a label
    ],
)
def test_lines_that_name_a_source_or_a_topic_never_answer(line: str) -> None:
    assert answers(line) == [] and texts(line)


def test_a_sentence_with_a_link_in_it_still_answers() -> None:
    note = "梯度截断的做法见[这篇博客](https://example.com)，它限制梯度的范数，防止梯度爆炸。"
    assert answers(note) == ["梯度截断的做法见这篇博客，它限制梯度的范数，防止梯度爆炸。"]
