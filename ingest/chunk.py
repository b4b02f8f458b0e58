"""Split posts into overlapping, heading-aware chunks: Post -> list[Chunk]."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ingest.read import Post, atx_heading

_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")
# A sentence ends at Chinese or English end punctuation (with any closing quotes or brackets),
# or at '.' before a space, unless the '.' numbers a list item ("1. ").
_SENT_END_RE = re.compile(r"[。！？；!?;]+[”’\"'）)\]」』]*|(?<!\b\d)(?<!\b\d\d)\.(?=\s)[”’\"'）)\]]*")
_WORD_CHAR_RE = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    post_id: str
    ord: int
    title: str
    heading: str
    text: str

    @property
    def context(self) -> str:
        """What is embedded and indexed: the post title and heading path give the passage its topic."""
        head = " > ".join(h for h in (self.title, self.heading) if h)
        return f"{head}\n{self.text}" if head else self.text


def split_sentences(text: str) -> list[str]:
    """Sentences of Chinese, English or mixed text; a line break always ends one."""
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        for m in _SENT_END_RE.finditer(line):
            piece = line[start : m.end()].strip()
            if piece:
                out.append(piece)
            start = m.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out


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


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading path, blocks) for each Markdown section; a fenced code block is one block."""
    out: list[tuple[str, list[str]]] = []
    path: list[tuple[int, str]] = []
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False

    def flush_block() -> None:
        if current and "".join(current).strip():
            blocks.append("\n".join(current).strip())
        current.clear()

    def flush_section() -> None:
        flush_block()
        if blocks:
            out.append((" > ".join(h for _, h in path), blocks.copy()))
        blocks.clear()

    for line in text.split("\n"):
        if _FENCE_RE.match(line):
            if not in_fence:
                flush_block()
            current.append(line)
            in_fence = not in_fence
            if not in_fence:
                flush_block()
            continue
        found = None if in_fence else atx_heading(line)
        if found:
            flush_section()
            level, title = found
            path = [(lv, h) for lv, h in path if lv < level] + [(level, title)]
        elif not in_fence and not line.strip():
            flush_block()
        else:
            current.append(line)
    flush_section()
    return out


def _units(blocks: list[str], size: int) -> list[tuple[str, bool]]:
    """Sentences no longer than `size`, each flagged when it ends a paragraph."""
    units: list[tuple[str, bool]] = []
    for block in blocks:
        sentences = block.split("\n") if block.lstrip().startswith(("```", "~~~")) else split_sentences(block)
        pieces = [p for s in sentences for p in _pieces(s, size)]
        units += [(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    return units


def _join(units: list[tuple[str, bool]]) -> str:
    text = ""
    for sentence, para_end in units:
        text += sentence + ("\n\n" if para_end else " ")
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
    """Chunks of about `size` characters that end at sentence boundaries.

    Each chunk after the first of a section starts with the last sentences of the one before,
    up to `overlap` characters, so an idea cut at a boundary is whole in one of the two.
    """
    texts: list[tuple[str, str]] = []
    for heading, blocks in sections(post.text):
        units = _units(blocks, size)
        spans = _spans([len(u) for u, _ in units], [end for _, end in units], size, overlap)
        texts += [(heading, _join(units[a:b])) for a, b in spans]
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for i, (heading, text) in enumerate(texts):
        digest = hashlib.sha1(f"{heading}\n{text}".encode("utf-8")).hexdigest()[:12]
        chunk_id = f"{post.post_id}:{digest}"
        while chunk_id in seen:
            chunk_id += "+"
        seen.add(chunk_id)
        chunks.append(Chunk(chunk_id, post.post_id, i, post.title, heading, text))
    return chunks
