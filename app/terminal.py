"""Text for a terminal: strings -> display widths, padded, clipped and wrapped lines, optional colour. Pure functions.

A Chinese character takes two columns of a terminal, a combining mark none; padding by `len()` would
misalign every column that holds Chinese text.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Mapping, TextIO

# Latin words, numbers and paths wrap as wholes; anything else (a CJK character, a space) stands alone.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-./:@#%+=]+|\s+|.", re.S)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns `text` takes on a terminal."""
    return sum(char_width(c) for c in text)


def printable(text: str) -> str:
    """No control characters: a note cannot move the cursor or recolour the terminal."""
    return _CONTROL_RE.sub("", text)


def pad(text: str, cols: int) -> str:
    """`text` followed by spaces up to `cols` columns."""
    return text + " " * max(0, cols - width(text))


def _fit(text: str, cols: int) -> str:
    """The longest start of `text` that fits in `cols` columns."""
    used = 0
    for i, c in enumerate(text):
        used += char_width(c)
        if used > cols:
            return text[:i]
    return text


def clip(text: str, cols: int) -> str:
    """`text` cut to at most `cols` columns, with "…" where it was cut."""
    if width(text) <= cols:
        return text
    return _fit(text, cols - 1).rstrip() + "…"


def wrap(text: str, cols: int) -> list[str]:
    """Lines of at most `cols` columns; breaks between Chinese characters or at spaces, never inside a
    Latin word unless the word alone is wider than a line."""
    lines: list[str] = []
    line, used = "", 0
    for token in _TOKEN_RE.findall(" ".join(text.split("\n"))):
        if token.isspace():
            if line and used < cols:
                line, used = line + " ", used + 1
            continue
        if used + width(token) > cols and line:
            lines.append(line.rstrip())
            line, used = "", 0
        while width(token) > cols:  # a word wider than a line is cut
            head = _fit(token, cols) or token[0]
            lines.append(head)
            token = token[len(head):]
        line, used = line + token, used + width(token)
    if line.strip():
        lines.append(line.rstrip())
    return lines


def colour_wanted(stream: TextIO, env: Mapping[str, str] = os.environ) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    return stream.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


@dataclass(frozen=True)
class Style:
    """ANSI styles, or plain text when `colour` is False."""

    colour: bool

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and text else text

    def bold(self, text: str) -> str:
        return self._sgr("1", text)

    def dim(self, text: str) -> str:
        return self._sgr("2", text)

    def accent(self, text: str) -> str:
        return self._sgr("36", text)
