"""What a reader would stumble on in an answer: (answer text, cited notes' Markdown) -> defects. Pure.

An extractive answer is sentences of the notes, each followed by its marker [n]. A sentence is defective
when it shows Markdown source, ends a lead-in ("…如下：") whose list or formula was left out, is only a link,
or is a list fragment (items run together, or a piece that starts with a list marker).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from ingest.blocks import parser

MARKDOWN, LEAD_IN, LINK_ONLY, LIST_FRAGMENT = "markdown", "lead-in", "link-only", "list fragment"
KINDS = (MARKDOWN, LEAD_IN, LINK_ONLY, LIST_FRAGMENT)

_MARKER_RE = re.compile(r"\[\d+\]")
# An HTML element a note might carry; "<EOS>" or "<unk>" in a sentence are words, not markup.
_HTML_ELEMENTS = (
    "a|abbr|b|blockquote|br|center|code|del|details|div|em|font|h[1-6]|hr|i|iframe|img|kbd|li|ol|p|pre|s|script|"
    "small|span|strong|style|sub|summary|sup|table|tbody|td|th|thead|tr|u|ul"
)
_MARKDOWN_RE = re.compile(
    r"(?<!\s)\*\*|\*\*(?!\s)|__|\]\(|!\[|`"  # emphasis ("x ** 2" is a power), links, images, code
    r"|^\s*(?:>|#{1,6}\s)"  # a quote or an ATX heading at the start of a sentence
    r"|\|\s*:?-{3,}"  # a table rule
    rf"|</?(?:{_HTML_ELEMENTS})(?:\s[^<>]*)?/?>",  # an HTML tag
    re.IGNORECASE,
)
_URL_RE = re.compile(r"https?://|www\.", re.IGNORECASE)
# A list marker followed by words (not "a - b", "6 * 9", "c0 + c1" in a formula written without $).
_LIST_START_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+[^\d\s]")
_LIST_MARKER_RE = re.compile(r"(?:^|\s)(?:[-•]|\d{1,3}[.)])\s+[^\d\s=+*/<>-]")
_WORD_RE = re.compile(r"\w")
# Formulas are TeX, kept as written; their symbols are neither Markdown nor list markers.
_MATH_RE = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)


def sentences(answer: str) -> list[str]:
    """The sentences of an answer: the text before each marker (a run of markers ends one sentence)."""
    return [s.strip() for s in _MARKER_RE.split(answer) if s.strip()]


def link_texts(markdown: str) -> list[str]:
    """The text of every link in a note, as its reader sees it."""
    out: list[str] = []
    for token in parser(html=False).parse(markdown):
        text: list[str] | None = None
        for child in token.children or []:
            if child.type == "link_open":
                text = []
            elif child.type == "link_close" and text is not None:
                out.append("".join(text).strip())
                text = None
            elif text is not None and child.type in ("text", "code_inline"):
                text.append(child.content)
    return [t for t in out if t]


def _link_only(sentence: str, links: Iterable[str]) -> bool:
    """Mostly a URL, or mostly the text of links of the cited notes."""
    if _URL_RE.search(sentence):
        return True
    words = len(_WORD_RE.findall(sentence))
    linked = sum(len(_WORD_RE.findall(t)) for t in links if len(t) >= 2 and t in sentence)
    return words > 0 and linked >= 0.6 * words


def defects(sentence: str, links: Iterable[str] = ()) -> set[str]:
    """The defects of one answer sentence; `links` are the link texts of the notes it was cited from."""
    found = set()
    sentence = _MATH_RE.sub("x", sentence)
    if _MARKDOWN_RE.search(sentence):
        found.add(MARKDOWN)
    if sentence.rstrip().endswith((":", "：")):
        found.add(LEAD_IN)
    if _link_only(sentence, links):
        found.add(LINK_ONLY)
    if _LIST_START_RE.match(sentence) or len(_LIST_MARKER_RE.findall(sentence)) >= 2:
        found.add(LIST_FRAGMENT)
    return found


def answer_defects(answer: str, links: Iterable[str] = ()) -> set[str]:
    """Every kind of defect found in any sentence of an answer."""
    links = list(links)
    return {d for s in sentences(answer) for d in defects(s, links)}
