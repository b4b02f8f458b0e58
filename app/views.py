"""A post as a readable HTML page: Post -> HTML, with every piece of note text escaped."""
from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from ingest.chunk import sections
from ingest.read import Post

_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)[^\n]*\n?|\n?\s{0,3}(```|~~~)\s*$")


def _safe_url(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("http://", "https://")) else None


def _blocks(text: str, title: str) -> str:
    """Headings, paragraphs and code blocks; inline Markdown stays as written, escaped."""
    out = []
    for heading, blocks in sections(text):
        if heading and heading.split(" > ")[-1] != title:
            out.append(f"<h2>{escape(heading.split(' > ')[-1])}</h2>")
        for block in blocks:
            if block.lstrip().startswith(("```", "~~~")):
                out.append(f"<pre><code>{escape(_FENCE_RE.sub('', block))}</code></pre>")
            else:
                out.append(f"<p>{escape(block)}</p>")
    return "".join(out)


def _related(related: Sequence[tuple[Post, float]]) -> str:
    if not related:
        return ""
    items = "".join(
        f'<li><a href="/posts/{escape(quote(p.post_id, safe=""))}">{escape(p.title)}</a>'
        f'<span class="related-score">{score:.2f}</span></li>'
        for p, score in related
    )
    return f'<nav class="related" aria-labelledby="related-h"><h2 id="related-h">相关笔记 · Related notes</h2><ol>{items}</ol></nav>'


def post_page(post: Post, related: Sequence[tuple[Post, float]] = ()) -> str:
    """The note, then the notes nearest to it."""
    meta = " · ".join(escape(x) for x in [post.date or "", *post.tags] if x)
    url = _safe_url(post.url)
    source = f'<p class="source"><a href="{escape(url)}" rel="noopener noreferrer">{escape(url)}</a></p>' if url else ""
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(post.title)}</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="/static/note.css">
</head>
<body class="post-page">
<main class="note">
<p><a href="/">← 笔记助手 / Notes assistant</a></p>
<h1>{escape(post.title)}</h1>
<p class="meta">{meta}</p>
<article>{_blocks(post.text, post.title)}</article>
{source}
{_related(related)}
</main>
</body>
</html>
"""
