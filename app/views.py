"""A post as a readable HTML page: Post -> HTML, its Markdown rendered on the server and nothing in it trusted.

The note is parsed by the same parser as ingest (ingest/blocks.py) and rendered by markdown-it-py, with
these rules on top, because a note may come from anywhere:
- raw HTML is shown as text, never inserted (an HTML comment, hidden when a note is rendered, stays hidden);
- a link is a link only to http(s), mailto or a relative path; any other (javascript:, data:, …) is its text;
- an image is never fetched (the page works offline and tells no server it was read): its alt text is shown,
  linked to the image;
- formulas are shown as their TeX source, styled;
- table alignment becomes a class, since the page's Content-Security-Policy forbids inline styles.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

from ingest.blocks import HEADING, LABEL, PROSE, blocks, parser
from ingest.read import Post

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Browsers ignore ASCII tabs, newlines and leading control characters and spaces in a URL: "java\tscript:"
# is javascript:. What is left before the first ':' (if no '/', '?' or '#' comes first) is the scheme.
_IGNORED_IN_URL_RE = re.compile(r"[\x00-\x20\x7f]")
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_ALIGN_RE = re.compile(r"text-align:(left|right|center)")
# The related notes show this much of a note's opening, so that sections sharing a title can be told apart.
OPENING_CHARS = 48


def safe_href(url: str | None) -> str | None:
    """`url` when it may be a link on the page: http(s), mailto or relative; else None."""
    if not url:
        return None
    scheme = _SCHEME_RE.match(_IGNORED_IN_URL_RE.sub("", url))
    return url if scheme is None or scheme.group(1).lower() in SAFE_SCHEMES else None


class _NoteRenderer(RendererHTML):
    """markdown-it's HTML renderer with the page's rules for links, images, raw HTML, math and tables."""

    def link_open(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        href = safe_href(str(tokens[idx].attrs.get("href", "")))
        env.setdefault("links", []).append(href is not None)
        if href is None:
            return ""
        return f'<a href="{escape(href)}" rel="noopener noreferrer">'

    def link_close(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return "</a>" if env.get("links") and env["links"].pop() else ""

    def image(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        token = tokens[idx]
        alt = escape(self.renderInlineAsText(token.children or [], options, env) or "图片 / image")
        src = safe_href(str(token.attrs.get("src", "")))
        if src is None:
            return f'<span class="image">{alt}</span>'
        return f'<a class="image" href="{escape(src)}" rel="noopener noreferrer">{alt}</a>'

    def html_block(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        content = tokens[idx].content
        if content.lstrip().startswith("<!--"):
            return ""
        return f'<p class="raw-html">{escape(content.strip())}</p>\n'

    def html_inline(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        content = tokens[idx].content
        return "" if content.startswith("<!--") else escape(content)

    def math_inline(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return f'<span class="math">${escape(tokens[idx].content.strip())}$</span>'

    def math_inline_double(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return f'<span class="math">$${escape(tokens[idx].content.strip())}$$</span>'

    def math_block(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return f'<div class="math">$${escape(tokens[idx].content.strip())}$$</div>\n'

    def math_block_label(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return self.math_block(tokens, idx, options, env)

    def table_open(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return '<div class="table">' + self.renderToken(tokens, idx, options, env)

    def table_close(self, tokens: list[Token], idx: int, options: OptionsDict, env: dict) -> str:
        return self.renderToken(tokens, idx, options, env) + "</div>\n"


def _prepare(tokens: list[Token], title: str) -> list[Token]:
    """Headings one level down (the page's title is its h1), a first heading that repeats the title left out,
    and table alignment as a class."""
    if len(tokens) > 2 and tokens[0].type == "heading_open" and tokens[1].content.strip() == title.strip():
        tokens = tokens[3:]
    for t in tokens:
        if t.type in ("heading_open", "heading_close"):
            t.tag = f"h{min(6, int(t.tag[1:]) + 1)}"
        elif t.type in ("th_open", "td_open") and "style" in t.attrs:
            align = _ALIGN_RE.match(str(t.attrs.pop("style")))
            if align:
                t.attrSet("class", f"align-{align.group(1)}")
    return tokens


def note_html(post: Post) -> str:
    """The note's Markdown as safe HTML."""
    md = parser(html=True)
    env: dict[str, Any] = {}
    tokens = _prepare(md.parse(post.text, env), post.title)
    return _NoteRenderer(md).render(tokens, md.options, env)


def opening(post: Post) -> str:
    """What tells a note from others of the same title: its first heading (or emphasised label), else its first
    sentences that say something (not a reference line), else its first words."""
    found = blocks(post.text)
    heading = next((b.text for b in found if b.kind in (HEADING, LABEL) and b.text != post.title), None)
    text = heading or next((b.text for b in found if b.kind in PROSE and b.answers), None)
    text = text or next((b.text for b in found if b.kind in PROSE), "")
    title = post.title.removesuffix("…")
    rest = text[len(title) :].lstrip(" \t,，、;；:：.。")
    if title and text.startswith(title) and rest:
        text = rest  # a title taken from the first sentence: what follows tells more, without its comma
    return text if len(text) <= OPENING_CHARS else text[: OPENING_CHARS - 1].rstrip() + "…"


def _related(related: Sequence[tuple[Post, float]]) -> str:
    if not related:
        return ""
    items = "".join(
        f'<li><a href="/posts/{escape(quote(p.post_id, safe=""))}">{escape(p.title)}</a>'
        f'<span class="related-score">{score:.2f}</span>'
        f'<span class="related-opening">{escape(opening(p))}</span></li>'
        for p, score in related
    )
    return f'<nav class="related" aria-labelledby="related-h"><h2 id="related-h">相关笔记 · Related notes</h2><ol>{items}</ol></nav>'


def post_page(post: Post, related: Sequence[tuple[Post, float]] = ()) -> str:
    """The note, then the notes nearest to it."""
    meta = " · ".join(escape(x) for x in [post.date or "", *post.tags] if x)
    url = safe_href(post.url) if post.url and post.url.lower().startswith(("http://", "https://")) else None
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
<article>{note_html(post)}</article>
{source}
{_related(related)}
</main>
</body>
</html>
"""
