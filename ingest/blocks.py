"""Read a note's Markdown into blocks of plain text: Markdown -> list[Block].

The note is parsed once by markdown-it-py (CommonMark, with tables, strikethrough, bare links and `$…$`
math); everything downstream (chunks, BM25, embeddings, answer sentences, snippets) reads the blocks'
plain text and never the Markdown source. In that text emphasis markers are gone, a link keeps its text
(a bare URL keeps nothing), an image its alt text, raw HTML its text without the tags (never a script's or
a style's), entities are decoded, and math stays TeX between `$…$` or `$$…$$`.

A block also says whether its sentences may answer a question: code, tables, math on its own line, lines
that are mostly links, emphasised labels and whatever sits under a "References" heading stay searchable but
never answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

# Kinds of block. A "label" is a paragraph that is all bold or italic: a heading in all but syntax.
HEADING, PARAGRAPH, ITEM, QUOTE, LABEL, TABLE, CODE, MATH, FIGURE = (
    "heading", "paragraph", "item", "quote", "label", "table", "code", "math", "figure",
)
# A "figure" is a block with no text to read (an image without alt text, a formula drawn as one); it is kept,
# empty, so that a lead-in before it is not joined to whatever comes after.
# Blocks made of sentences, as opposed to code, tables and display math.
PROSE = frozenset({PARAGRAPH, ITEM, QUOTE, LABEL})
# Links carrying this share of a block's words make it a reference line, not an answer; so does a line that
# opens with a link and adds at most ATTRIBUTION word characters (an author, a site).
LINK_SHARE = 0.6
ATTRIBUTION = 16
# A paragraph up to LABEL_MAX characters, this share of it emphasised and no sentence end in it, is a label.
LABEL_SHARE = 0.7
LABEL_MAX = 60
# Headings of sections that list sources rather than say anything.
_REFERENCES_RE = re.compile(
    r"(参考|参考文献|参考资料|参考链接|引用|相关链接|相关阅读|延伸阅读|扩展阅读|推荐阅读|资料|链接|"
    r"references?|further reading|see also|links|resources|bibliography|sources)[\s:：]*",
    re.IGNORECASE,
)
# A line that names a source and says nothing of its own: a book in title marks, then at most a section
# ("《深度学习》 6.4.1 万能近似性质和深度"), or authors, a year and a title ("Ioffe and Szegedy, 2015, Batch
# Normalization: Accelerating …").
_SOURCE_LINE_RE = re.compile(
    r"《[^》]{1,40}》[^。！？；!?;：:]{0,40}"
    r"|[A-Z][A-Za-z.\- ]{1,60},\s*(?:19|20)\d\d[a-z]?[,.]\s[^。！？!?]{1,200}"
)
# Emphasis markers a note left unmatched ("**要点", "*最大池化"): CommonMark shows them as they are, but they
# are markup all the same. A run of two or three asterisks is dropped unless it stands between spaces
# ("x ** 2"); a single one only next to a Chinese character, where it cannot mean multiplication.
_STRAY_EMPHASIS_RE = re.compile(r"(?<!\s)\*{2,3}|\*{2,3}(?!\s)|(?<=[\u3400-\u9fff])\*|\*(?=[\u3400-\u9fff])|`")
_CLAUSE_RE = re.compile(r"[。，；！？、,;!?]|[.:](\s|$)")
_SENTENCE_END_RE = re.compile(r"[。！？；!?;]|\.(\s|$)")
_WORD_RE = re.compile(r"[\w\u3400-\u9fff]")
_CJK_RE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_FULL_WIDTH_RE = re.compile(r"[\u3000-\u303f\uff00-\uffef]")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HIDDEN_TAG_RE = re.compile(r"<(/?)(?:script|style|template|noscript)\b", re.IGNORECASE)
_URL_RE = re.compile(r"(?:[a-z][a-z0-9+.-]*:|www\.)\S*", re.IGNORECASE)
# HTML elements whose content is never text to read.
_HIDDEN_ELEMENTS = frozenset({"script", "style", "template", "noscript", "iframe", "object"})


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    # A heading's level (1-6); a list item's depth (1 for a top-level item).
    level: int = 0
    # May a sentence of this block answer a question?
    answers: bool = True
    # A table's cells, row by row, header first.
    rows: tuple[tuple[str, ...], ...] = ()
    # The text of each bold or italic span, in order: what a note emphasises is often a term it defines.
    emphasis: tuple[str, ...] = ()


@lru_cache(maxsize=2)
def parser(html: bool) -> MarkdownIt:
    """The one Markdown parser: `html=True` to read raw HTML as HTML (for its text), False to show it as text.

    Links are parsed whatever their scheme, so that an unsafe link still yields its text; the note page
    (app/views.py) decides which become links.
    """
    md = MarkdownIt("commonmark", {"html": html, "linkify": True})
    md.enable(["table", "strikethrough", "linkify"])
    # `allow_digits=False`: "$5 to $10" is money, not a formula.
    md.use(dollarmath_plugin, allow_digits=False, double_inline=True)
    md.validateLink = lambda url: True
    return md


class _HtmlText(HTMLParser):
    """The text of an HTML fragment: tags dropped, entities decoded, scripts and styles dropped whole."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden += 1
        elif tag == "img":
            self.parts.append(dict(attrs).get("alt") or "")
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(fragment: str) -> str:
    reader = _HtmlText()
    reader.feed(fragment)
    reader.close()
    return " ".join("".join(reader.parts).split())


def join_text(left: str, right: str) -> str:
    """Two pieces of text on one line: nothing between Chinese characters or after full-width punctuation,
    one space elsewhere."""
    if not left or not right:
        return left + right
    if (_CJK_RE.match(left[-1]) and _CJK_RE.match(right[0])) or _FULL_WIDTH_RE.match(left[-1]) or _FULL_WIDTH_RE.match(right[0]):
        return left + right
    return left + ("" if left[-1].isspace() or right[0].isspace() else " ") + right


def _is_url(text: str) -> bool:
    return bool(_URL_RE.fullmatch(text.strip()))


@dataclass(frozen=True)
class Inline:
    """The plain text of a paragraph, a heading or a cell, and how much of it links and emphasis carry."""

    text: str
    words: int  # word characters (letters, digits, Han)
    linked: int  # word characters inside links
    emphasised: int  # word characters inside bold or italic
    opens_with_link: bool
    spans: tuple[str, ...] = ()  # the text of each bold or italic span

    @property
    def reference(self) -> bool:
        """Mostly links; a link and a few words of attribution ("[标题](url) - 作者 - 博客园"); or a short line
        with a link and no sentence in it ("./机器学习基础/[偏差与方差](…)")."""
        if not self.linked:
            return False
        return (
            self.linked >= LINK_SHARE * self.words
            or (self.opens_with_link and self.words - self.linked <= ATTRIBUTION)
            or (len(self.text) <= LABEL_MAX and not _CLAUSE_RE.search(self.text))
        )

    @property
    def label(self) -> bool:
        """A short line that is (nearly) all bold or italic, with no sentence in it: a heading in all but syntax."""
        return (
            self.emphasised >= LABEL_SHARE * self.words > 0
            and len(self.text) <= LABEL_MAX
            and not _SENTENCE_END_RE.search(self.text.rstrip("?？"))
        )


def inline_text(token: Token) -> Inline:
    """The plain text of an inline token, with the measures that tell a label or a reference line."""
    pieces: list[str] = []
    linked = emphasised = depth = hidden = 0
    opens_with_link = False
    link: list[str] | None = None  # the text of the link being read
    spans: list[str] = []
    span: list[str] = []
    for child in token.children or []:
        piece = ""
        if child.type == "text":
            piece = _STRAY_EMPHASIS_RE.sub("", child.content)
        elif child.type in ("code_inline", "image"):  # an image's content is its alt text
            piece = child.content
        elif child.type == "math_inline":
            piece = f"${child.content.strip()}$"
        elif child.type == "math_inline_double":
            piece = f"$${child.content.strip()}$$"
        elif child.type in ("softbreak", "hardbreak") or (child.type == "html_inline" and _BR_RE.match(child.content)):
            piece = "\n"
        elif child.type == "html_inline" and (tag := _HIDDEN_TAG_RE.match(child.content)):
            hidden = max(0, hidden + (-1 if tag.group(1) else 1))  # a script's or a style's text is not text
            continue
        elif child.type in ("strong_open", "em_open", "strong_close", "em_close"):
            depth += child.nesting
            if depth == 0 and "".join(span).strip():
                spans.append(" ".join("".join(span).split()))
            if depth == 0 or (depth == 1 and child.nesting == 1):
                span = []
        elif child.type == "link_open":
            link = []
            opens_with_link = opens_with_link or not "".join(pieces).strip()
        elif child.type == "link_close" and link is not None:
            piece = "".join(link)
            link = None
            if _is_url(piece):  # a bare URL or an autolink says nothing to a reader
                piece = ""
            linked += len(_WORD_RE.findall(piece))
        if hidden:
            continue
        if depth > 0 and child.type != "link_close":
            emphasised += len(_WORD_RE.findall(piece))
            span.append(piece)
        if link is not None:
            link.append(piece)
        else:
            pieces.append(piece)
    # A line break inside a paragraph is where the writer's editor wrapped it, not an end.
    text = ""
    for line in "".join(pieces).split("\n"):
        text = join_text(text, " ".join(line.split()))
    words = len(_WORD_RE.findall(text))
    return Inline(text, words, linked, min(emphasised, words), opens_with_link, tuple(spans))


class _Reader:
    """Walks the token stream once, keeping the containers (lists, items, quotes) it is inside."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.depth = 0  # list nesting
        self.quotes = 0
        self.item_open: list[bool] = []  # per open list item: has its first paragraph been read?
        self.reference_level = 0  # inside a references section opened by a heading of this level

    def add(
        self, kind: str, text: str, answers: bool = True, level: int = 0, rows: tuple = (), emphasis: tuple = ()
    ) -> None:
        if not text.strip():
            kind, text = FIGURE, ""
        if self.reference_level:
            answers = False
        self.blocks.append(Block(kind, text, level, answers and kind in PROSE, rows, emphasis))

    def heading(self, level: int, text: str) -> None:
        if self.reference_level and level <= self.reference_level:
            self.reference_level = 0
        if _REFERENCES_RE.fullmatch(text):
            self.reference_level = level
        self.add(HEADING, text, level=level)

    def paragraph(self, token: Token) -> None:
        inline = inline_text(token)
        text = inline.text
        answers = not inline.reference and not _SOURCE_LINE_RE.fullmatch(text)
        spans = inline.spans
        if self.item_open and not self.item_open[-1]:
            self.item_open[-1] = True
            self.add(ITEM, text, answers, self.depth, emphasis=spans)
        elif inline.label:
            if _REFERENCES_RE.fullmatch(text):
                self.reference_level = 7  # until the next heading of any level
            self.add(LABEL, text, False, emphasis=spans)
        else:
            # A paragraph after an item's first one continues the item, at its depth.
            kind = QUOTE if self.quotes else PARAGRAPH
            self.add(kind, text, answers, self.depth if self.item_open else 0, emphasis=spans)


def _table(tokens: list[Token], start: int) -> tuple[tuple[tuple[str, ...], ...], int]:
    """The rows of the table opening at `start`, and the position of its closing token."""
    rows: list[tuple[str, ...]] = []
    row: list[str] = []
    i = start
    while tokens[i].type != "table_close":
        t = tokens[i]
        if t.type == "tr_open":
            row = []
        elif t.type == "inline":
            row.append(inline_text(t).text)
        elif t.type == "tr_close":
            rows.append(tuple(row))
        i += 1
    return tuple(rows), i


def blocks(markdown: str) -> list[Block]:
    """The blocks of a note, in reading order."""
    tokens = parser(html=True).parse(markdown)
    r = _Reader()
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type in ("bullet_list_open", "ordered_list_open"):
            r.depth += 1
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            r.depth -= 1
        elif t.type == "list_item_open":
            r.item_open.append(False)
        elif t.type == "list_item_close":
            r.item_open.pop()
        elif t.type == "blockquote_open":
            r.quotes += 1
        elif t.type == "blockquote_close":
            r.quotes -= 1
        elif t.type == "heading_open":
            r.heading(int(t.tag[1:]), inline_text(tokens[i + 1]).text)
            i += 2
        elif t.type == "paragraph_open":
            r.paragraph(tokens[i + 1])
            i += 2
        elif t.type in ("fence", "code_block"):
            r.add(CODE, t.content.strip("\n"), False)
        elif t.type == "math_block":
            r.add(MATH, f"$${t.content.strip()}$$", False)
        elif t.type == "html_block" and t.content.lstrip().startswith("<!--"):
            # Commented out: hidden from the reader, so it never answers, but the writer's words stay searchable.
            inner = t.content.strip().removeprefix("<!--").split("-->")[0]
            r.blocks += [replace(b, answers=False) for b in blocks(inner) if b.kind != HEADING]
        elif t.type == "html_block":
            r.add(QUOTE if r.quotes else PARAGRAPH, html_text(t.content))
        elif t.type == "table_open":
            rows, i = _table(tokens, i)
            r.add(TABLE, "\n".join(" · ".join(c for c in row if c) for row in rows), False, rows=rows)
        elif t.type == "hr":
            pass
        i += 1
    return r.blocks


def plain_text(markdown: str) -> str:
    """The whole note as plain text, one block per line."""
    return "\n".join(b.text for b in blocks(markdown))
