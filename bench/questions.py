"""Read labelled question files: JSON lines in either format -> list[Question].

The project's own files hold `{"question", "relevant", "lang"}`; the development benchmark's hold
`{"q", "gold", "lang", "split"}`. A question with nothing relevant is off-topic: the notes should refuse it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

OFF = "off"
NO_SPLIT = "all"


@dataclass(frozen=True)
class Question:
    text: str
    relevant: frozenset[str]
    # zh, en or mixed for a question the notes answer; "off" for one they should refuse.
    lang: str
    # tune or heldout in the benchmark; "all" for a file without splits.
    split: str

    @property
    def off_topic(self) -> bool:
        return not self.relevant


def parse(row: dict) -> Question:
    text = row.get("question", row.get("q"))
    relevant = row.get("relevant", row.get("gold"))
    if not isinstance(text, str) or not isinstance(relevant, list) or "lang" not in row:
        raise ValueError(f"not a labelled question: {row!r}")
    return Question(text, frozenset(relevant), OFF if not relevant else str(row["lang"]), str(row.get("split", NO_SPLIT)))


def load(path: Path) -> list[Question]:
    return [parse(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line.strip()]
