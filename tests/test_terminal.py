"""Terminal text: display widths of Chinese and combining characters, padding, clipping, wrapping, colour rules."""
from __future__ import annotations

import io

from app.terminal import Style, clip, colour_wanted, pad, printable, width, wrap


class Terminal(io.StringIO):
    """Output that says it is a terminal: the one stand-in, for the TTY check."""

    def isatty(self) -> bool:
        return True


def test_widths_count_columns_not_characters() -> None:
    assert [width(s) for s in ("abc", "梯度", "梯度abc", "ｆｕｌｌ", "e\u0301", "a\u200bb", "")] == [3, 4, 7, 8, 1, 2, 0]


def test_pad_and_clip_by_display_width() -> None:
    assert pad("梯度", 6) == "梯度  " and pad("ab", 6) == "ab    " and pad("梯度检查点", 4) == "梯度检查点"
    assert clip("梯度检查点是什么", 9) == "梯度检查…" and width(clip("梯度检查点是什么", 9)) == 9
    assert clip("梯度检查点是什么", 10) == "梯度检查…"  # a wide character never straddles the edge
    assert clip("gradient checkpointing", 10) == "gradient…" and clip("short", 10) == "short"


def test_wrap_breaks_between_chinese_characters_and_at_spaces() -> None:
    lines = wrap("梯度检查点 gradient checkpointing 用重新计算换显存", 14)
    assert lines == ["梯度检查点", "gradient", "checkpointing", "用重新计算换显", "存"]
    assert all(width(line) <= 14 for line in lines)
    assert wrap("abcdefghijklmnopqrstuvwxyz", 10) == ["abcdefghij", "klmnopqrst", "uvwxyz"]
    assert wrap("一行\n两行", 20) == ["一行 两行"] and wrap("", 10) == []


def test_colour_only_on_a_terminal_without_no_color() -> None:
    assert colour_wanted(Terminal(), {}) is True
    assert colour_wanted(io.StringIO(), {}) is False
    assert colour_wanted(Terminal(), {"NO_COLOR": "1"}) is False
    assert colour_wanted(Terminal(), {"NO_COLOR": ""}) is True  # no-color.org: set and not empty
    assert colour_wanted(Terminal(), {"TERM": "dumb"}) is False
    assert Style(True).bold("x") == "\x1b[1mx\x1b[0m" and Style(False).bold("x") == "x"


def test_note_text_cannot_drive_the_terminal() -> None:
    assert printable("标题\x1b[2J\x07 ok\x9b") == "标题[2J ok"
