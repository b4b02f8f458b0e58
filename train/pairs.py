"""Training pairs from public bilingual machine-learning text: ../shared/training -> list[Pair].

Every pair is (query, passage): what a person would ask or name, and the Chinese text that answers it, as
our notes are Chinese. Sources (../shared/training/README.md gives their snapshots and licences):
- d2l-zh: each chapter's `X.md` (Chinese) beside `X_origin.md` (English), the same headings in the same order.
  A section's Chinese heading and its English heading each name its Chinese body ("heading"); when a section
  has as many paragraphs in both languages, each English paragraph names its Chinese one ("paragraph").
- hf-course: the same page in `chapters/en` and `chapters/zh-CN`; sections paired as in d2l-zh.
- cheatsheets: numbered English lines, each followed by its Chinese translation ("cheatsheet").
- d2l-zh's TERMINOLOGY.md: English term -> Chinese term ("term").
Markdown is read with the project's own parser (ingest/blocks.py): code, tables and formulas carry no aligned
meaning and are dropped, as are sections shorter than MIN_CHARS.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ingest.blocks import CODE, FIGURE, HEADING, MATH, TABLE, blocks
from ingest.segment import has_chinese

KINDS = ("heading", "paragraph", "cheatsheet", "term")
# A section body shorter than this makes a poor positive; a longer one is cut (the model reads 512 tokens).
MIN_CHARS = 40
MAX_CHARS = 600
GENERIC = 3
# d2l's reStructuredText-style roles: a label or a citation says nothing; a reference keeps nothing readable.
_ROLE_RE = re.compile(r":(label|numref|eqref|cite|ref|width|height|citet|citep):`[^`]*`")
# hf-course headings carry their anchor: "## 管道[[pipeline]]".
_ANCHOR_RE = re.compile(r"\[\[[^\]]*\]\]")
# Its MDX components (<Youtube id=…/>, <CourseFloatingBanner …/>) span lines.
_COMPONENT_RE = re.compile(r"<[A-Z][A-Za-z]*\b.*?(/>|</[A-Z][A-Za-z]*>)", re.S)
_CHEATSHEET_RE = re.compile(r"^\d+\.\s*\*\*(.+?)\*\*\s*\n+\s*&#10230;\s*(.+?)\s*$", re.M)
_TERM_RE = re.compile(r"^([^，,\n]+)[，,]\s*(.+?)\s*$", re.M)


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    kind: str
    # Pairs of one group (a section, a paragraph) never share a batch: they would be each other's negatives.
    group: str
    # The page it comes from: its other sections are the hard negatives (Settings.siblings).
    page: str = ""


@dataclass(frozen=True)
class Section:
    heading: str
    body: str
    paragraphs: tuple[str, ...]


def _clean(markdown: str) -> str:
    return _COMPONENT_RE.sub("", _ROLE_RE.sub("", markdown))


def sections(markdown: str) -> list[Section]:
    """A page's sections under their headings, as plain text; what comes before the first heading is kept
    under the page's title."""
    out: list[Section] = []
    heading, body = "", []

    def close() -> None:
        if heading:
            paragraphs = tuple(b.text for b in body)
            out.append(Section(heading, " ".join(paragraphs), paragraphs))

    for block in blocks(_clean(markdown)):
        if block.kind == HEADING:
            close()
            heading, body = " ".join(_ANCHOR_RE.sub("", block.text).split()), []
        elif block.kind not in (CODE, TABLE, MATH, FIGURE) and block.answers:
            body.append(block)
    close()
    return out


def _group(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()[:12]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS]


def aligned_pairs(zh: str, en: str, where: str) -> list[Pair]:
    """Pairs of one page in both languages, when their headings line up one to one."""
    zs, es = sections(zh), sections(en)
    if len(zs) != len(es):
        return []
    pairs: list[Pair] = []
    for z, e in zip(zs, es):
        if len(z.body) < MIN_CHARS or not has_chinese(z.body):
            continue
        group = _group(where, z.heading)
        pairs += [Pair(z.heading, _cut(z.body), "heading", group, where), Pair(e.heading, _cut(z.body), "heading", group, where)]
        if len(z.paragraphs) == len(e.paragraphs):
            pairs += [
                Pair(ep, zp, "paragraph", _group(where, z.heading, str(i)))
                for i, (zp, ep) in enumerate(zip(z.paragraphs, e.paragraphs))
                if len(zp) >= MIN_CHARS and len(ep) >= MIN_CHARS
            ]
    return pairs


def d2l(root: Path) -> list[Pair]:
    pairs: list[Pair] = []
    for origin in sorted(root.glob("chapter_*/*_origin.md")):
        zh = origin.with_name(origin.name.removesuffix("_origin.md") + ".md")
        if zh.is_file():
            pairs += aligned_pairs(zh.read_text("utf-8"), origin.read_text("utf-8"), f"d2l/{zh.stem}")
    return pairs


def hf_course(root: Path) -> list[Pair]:
    pairs: list[Pair] = []
    for zh in sorted((root / "chapters" / "zh-CN").glob("chapter*/*.mdx")):
        en = root / "chapters" / "en" / zh.parent.name / zh.name
        if en.is_file():
            pairs += aligned_pairs(zh.read_text("utf-8"), en.read_text("utf-8"), f"hf/{zh.parent.name}/{zh.stem}")
    return pairs


def cheatsheets(root: Path) -> list[Pair]:
    """Simplified Chinese only: the notes are written in it."""
    pairs: list[Pair] = []
    for path in sorted((root / "zh").glob("*.md")):
        for m in _CHEATSHEET_RE.finditer(path.read_text("utf-8")):
            en, zh = " ".join(m.group(1).split()), " ".join(m.group(2).split())
            if has_chinese(zh) and len(en) >= 3:
                pairs.append(Pair(en, zh, "cheatsheet", _group(path.name, en)))
    return pairs


def terms(path: Path) -> list[Pair]:
    pairs: list[Pair] = []
    for m in _TERM_RE.finditer(path.read_text("utf-8")):
        zh, en = m.group(1).strip(), m.group(2).strip()
        if has_chinese(zh) and not has_chinese(en) and not zh.startswith("#"):
            pairs.append(Pair(en, zh, "term", _group("term", en)))
    return pairs


def pairs(training: Path, kinds: tuple[str, ...] = KINDS) -> list[Pair]:
    """Every pair of the chosen kinds, in a fixed order (the sources sorted, each read in order). A heading that
    names GENERIC or more sections ("练习", "Summary") names none of them, and is left out."""
    found = d2l(training / "d2l-zh") + hf_course(training / "hf-course") + cheatsheets(training / "cheatsheets")
    found += terms(training / "d2l-zh" / "TERMINOLOGY.md")
    uses = Counter(p.query for p in found if p.kind == "heading")
    return [p for p in found if p.kind in kinds and not (p.kind == "heading" and uses[p.query] >= GENERIC)]
