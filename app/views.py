"""A post as a readable HTML page: Post -> HTML, with every piece of note text escaped."""
from __future__ import annotations

from html import escape

from ingest.read import Post


def _safe_url(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("http://", "https://")) else None


def post_page(post: Post) -> str:
    paragraphs = "".join(f"<p>{escape(p.strip())}</p>" for p in post.text.split("\n\n") if p.strip())
    meta = " · ".join(escape(x) for x in [post.date or "", *post.tags] if x)
    url = _safe_url(post.url)
    source = f'<p class="source"><a href="{escape(url)}" rel="noopener noreferrer">{escape(url)}</a></p>' if url else ""
    return f"""<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(post.title)}</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body class="post-page">
<main class="note">
<p><a href="/">← 笔记助手 / Notes assistant</a></p>
<h1>{escape(post.title)}</h1>
<p class="meta">{meta}</p>
<article>{paragraphs}</article>
{source}
</main>
</body>
</html>
"""
