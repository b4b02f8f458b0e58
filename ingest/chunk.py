"""Split posts into overlapping chunks along their Markdown blocks: Post -> list[Chunk]."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ingest.blocks import CODE, HEADING, ITEM, LABEL, MATH, PARAGRAPH, PROSE, QUOTE, TABLE, Block, blocks, join_text
from ingest.read import Post

# Recorded in the manifest: a build cut another way is re-cut, its unchanged texts' vectors reused.
METHOD = "markdown-blocks/1"
# The longest lead-in with what it introduces ("…如下：A；B；C") that still answers as one sentence.
GROUP_MAX = 300
_CLAUSE_ENDS = tuple("。；;.!?！？，,、")
_HAN_RE = re.compile(r"[\u3400-\u9fff]")
# Math is never cut: its spans are masked while sentence ends are looked for.
_MATH_RE = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
# A sentence ends at Chinese or English end punctuation (with any closing quotes or brackets),
# or at '.' before a space, unless the '.' numbers a list item ("1. ").
_SENT_END_RE = re.compile(r"[。！？；!?;]+[”’\"'）)\]」』]*|(?<!\b\d)(?<!\b\d\d)\.(?=\s)[”’\"'）)\]]*")
_WORD_CHAR_RE = re.compile(r"[A-Za-z0-9_]")
# "1. " or "2) " after a blank, before a word: an item number in a list that lost its line breaks.
_INLINE_ITEM_RE = re.compile(r"(?<=\s)\d{1,2}[.)]\s+(?=[^\d\s])")
_ITEM_NUMBER_RE = re.compile(r"^\d{1,2}[.)]\s+(?=[^\d\s])")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    post_id: str
    ord: int
    title: str
    heading: str
    text: str
    # The sentences of this chunk that may answer a question; the index stores them as sentence ids.
    answers: tuple[str, ...] = ()

    @property
    def context(self) -> str:
        """What is embedded and indexed: the post title and heading path give the passage its topic."""
        head = " > ".join(h for h in (self.title, self.heading) if h)
        return f"{head}\n{self.text}" if head else self.text


def _sentences(text: str) -> list[tuple[str, bool]]:
    """Each sentence of `text`, and whether blank space came before it there."""
    out: list[tuple[str, bool]] = []
    for line in text.split("\n"):
        masked = _MATH_RE.sub(lambda m: "$" * len(m.group(0)), line)
        items = {m.start() for m in _INLINE_ITEM_RE.finditer(masked)}
        cuts = sorted({m.end() for m in _SENT_END_RE.finditer(masked)} | items | {len(line)})
        start = 0
        for cut in cuts:
            piece = line[start:cut]
            if piece.strip():
                out.append((piece.strip(), piece[:1].isspace() or line[start - 1 : start].isspace()))
            start = cut
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of Chinese, English or mixed text; a line break always ends one, a formula never does.

    A list flattened into a line ("…显卡, 1. (缓解GIL限制)在…", as feeds print them) still numbers its items:
    each number starts a sentence.
    """
    return [sentence for sentence, _ in _sentences(text)]


def _cut_point(text: str, limit: int) -> int:
    """The last place at or before `limit` that is not inside an English word or number."""
    space = text.rfind(" ", limit // 2, limit + 1)
    if space > 0:
        return space
    for i in range(limit, limit // 2, -1):
        if not (_WORD_CHAR_RE.match(text[i - 1]) and _WORD_CHAR_RE.match(text[i])):
            return i
    return limit


def _pieces(sentence: str, size: int) -> list[str]:
    """A sentence longer than `size`, cut between words."""
    pieces = []
    while len(sentence) > size:
        cut = _cut_point(sentence, size)
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [p for p in pieces + [sentence] if p]


@dataclass(frozen=True)
class _Unit:
    text: str  # as the chunk shows it
    answer: str | None  # the sentence it offers to answers, if any
    new_line: bool  # starts a line of the chunk: a block, a list item, a row, a line of code
    item: bool = False  # starts a list item
    spaced: bool = True  # the note put blank space before it (within a line)


def sections(post_text: str) -> list[tuple[str, list[Block]]]:
    """(heading path, blocks) for each section of a note, headings left out."""
    out: list[tuple[str, list[Block]]] = []
    path: list[tuple[int, str]] = []
    current: list[Block] = []
    for block in blocks(post_text):
        if block.kind == HEADING:
            if current:
                out.append((" > ".join(h for _, h in path), current))
            current = []
            path = [(lv, h) for lv, h in path if lv < block.level] + [(block.level, block.text)]
        else:
            current.append(block)
    if current:
        out.append((" > ".join(h for _, h in path), current))
    return out


def _is_lead(sentence: str) -> bool:
    return sentence.rstrip().endswith((":", "："))


def _followers(section: list[Block], i: int) -> list[Block]:
    """What the lead-in ending block `i` introduces: the list under it, a formula, or the next paragraph."""
    lead = section[i]
    rest = section[i + 1 :]
    if not rest:
        return []
    first = rest[0]
    if first.kind == ITEM and first.level > (lead.level if lead.kind == ITEM else 0):
        taken = []
        for b in rest:
            if b.level < first.level or b.kind not in PROSE or (b.kind != ITEM and b.level == 0):
                break
            taken.append(b)
        return taken
    if first.kind == MATH or (first.kind in (PARAGRAPH, QUOTE) and first.level == lead.level and not _is_lead(first.text)):
        return [first]
    return []


def _enumeration(lead: str, followers: list[Block]) -> str:
    """A lead-in and what it introduces as one sentence: "…如下：A；B；C"."""
    top = [b for b in followers if (b.answers or b.kind == MATH) and (b.kind != ITEM or b.level == followers[0].level)]
    parts = [b.text.strip() for b in top]
    if not parts or any(_is_lead(p) for p in parts):
        return ""  # nothing to read after the lead-in, or a lead-in of its own inside
    text = lead.strip()
    for k, part in enumerate(parts):
        if k < len(parts) - 1 and not part.endswith(_CLAUSE_ENDS):
            part += "；" if _HAN_RE.search(part) else ";"
        text = join_text(text, part)
    return text


def _block_units(block: Block, size: int) -> list[_Unit]:
    """A block's sentences (or lines, for code and tables), cut to at most `size` characters.

    A piece cut out of an overlong sentence is searchable but never answers: it is not a sentence.
    """
    if block.kind in (CODE, TABLE):
        lines = [line for line in block.text.split("\n") if line.strip()]
        return [_Unit(p, None, i == 0) for line in lines for i, p in enumerate(_pieces(line, size))]
    sentences = _sentences(block.text) if block.kind != MATH else [(block.text, False)]
    # A sentence that ends in a colon inside a block introduces the next: the two answer as one, or not at all.
    joined: list[tuple[str, bool]] = []
    for sentence, spaced in sentences:
        if joined and _is_lead(joined[-1][0]) and len(joined[-1][0]) + len(sentence) <= GROUP_MAX:
            joined[-1] = (joined[-1][0] + (" " if spaced else "") + sentence, joined[-1][1])
        else:
            joined.append((sentence, spaced))
    units: list[_Unit] = []
    for i, (sentence, spaced) in enumerate(joined):
        pieces = _pieces(sentence, size)
        whole = len(pieces) == 1 and (i == len(joined) - 1 or not _is_lead(sentence))
        # The number of a flattened list's item stays in the passage, not in the answer.
        answer = _ITEM_NUMBER_RE.sub("", sentence) if block.answers and whole else None
        units += [_Unit(p, answer, False, spaced=spaced or j > 0) for j, p in enumerate(pieces)]
    if units:
        # Each block starts a line. A list item gets no bullet: "•" in the text made retrieval worse
        # (docs/benchmarks.md), and a line of its own already reads as an item.
        units[0] = _Unit(units[0].text, units[0].answer, True, block.kind == ITEM, False)
    return units


def _units(section: list[Block], size: int) -> list[_Unit]:
    """The units of a section. A sentence that ends in a colon ("…计算：") answers only together with what it
    introduces, as one unit, when the two are short enough to read as one sentence; otherwise it never answers."""
    units: list[_Unit] = []
    i = 0
    while i < len(section):
        block = section[i]
        own = _block_units(block, size)
        if block.kind in PROSE and own and _is_lead(block.text):
            followers = _followers(section, i)
            joined = _enumeration(own[-1].text, followers) if followers else ""
            # An emphasised label that ends in a colon ("**常用算法**：") is a lead-in too.
            if joined and (block.answers or block.kind == LABEL) and len(joined) <= GROUP_MAX:
                shown = _join([own[-1], *(u for f in followers for u in _block_units(f, size))])
                units += own[:-1] + [_Unit(shown, joined, own[-1].new_line)]
                i += 1 + len(followers)
                continue
            own[-1] = _Unit(own[-1].text, None, own[-1].new_line)
        units += own
        i += 1
    return units


def _join(units: list[_Unit]) -> str:
    text = ""
    for u in units:
        text += ("\n" if u.new_line else " " if u.spaced else "") + u.text if text else u.text
    return text.strip()


def _spans(lengths: list[int], para_ends: list[bool], size: int, overlap: int) -> list[tuple[int, int]]:
    """Unit ranges [a, b) of about `size` characters, each overlapping the one before."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(lengths):
        end, length = start, 0
        while end < len(lengths) and (end == start or length + lengths[end] <= size):
            length += lengths[end] + 1
            end += 1
            # Prefer to stop at a paragraph end once the chunk is reasonably full.
            if para_ends[end - 1] and length >= size * 0.6:
                break
        spans.append((start, end))
        if end >= len(lengths):
            break
        back, carried = end, 0
        while back - 1 > start and carried + lengths[back - 1] <= overlap:
            back -= 1
            carried += lengths[back - 1 + 1]
        start = back
    # A scrap of a few words says little on its own: fold it into its neighbour when they fit together.
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged:
            pa, pb = merged[-1]
            small = min(sum(lengths[pa:pb]), sum(lengths[a:b])) < size // 4
            if small and sum(lengths[pa:max(pb, b)]) <= size * 1.3:
                merged[-1] = (pa, max(pb, b))
                continue
        merged.append((a, b))
    return merged


def chunk(post: Post, size: int, overlap: int) -> list[Chunk]:
    """Chunks of about `size` characters that end at sentence boundaries, never across a heading.

    Each chunk after the first of a section starts with the last sentences of the one before,
    up to `overlap` characters, so an idea cut at a boundary is whole in one of the two.
    """
    texts: list[tuple[str, list[_Unit]]] = []
    for heading, section in sections(post.text):
        units = _units(section, size)
        # A chunk would rather end where a paragraph, a list or a table ends than between two items.
        ends = [u.new_line and not (u.item and prev.item) for prev, u in zip(units, units[1:])] + [True]
        spans = _spans([len(u.text) for u in units], ends, size, overlap)
        texts += [(heading, units[a:b]) for a, b in spans]
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for i, (heading, units) in enumerate(texts):
        text = _join(units)
        digest = hashlib.sha1(f"{heading}\n{text}".encode("utf-8")).hexdigest()[:12]
        chunk_id = f"{post.post_id}:{digest}"
        while chunk_id in seen:
            chunk_id += "+"
        seen.add(chunk_id)
        answers = tuple(dict.fromkeys(u.answer for u in units if u.answer))
        chunks.append(Chunk(chunk_id, post.post_id, i, post.title, heading, text, answers))
    return chunks
