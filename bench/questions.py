"""Read labelled question files: JSON lines in either format, or the feedback file -> list[Question].

The project's own files hold `{"question", "relevant", "lang"}`; the development benchmark's hold
`{"q", "gold", "lang", "split"}`. A question with nothing relevant is off-topic: the notes should refuse it.
Feedback (app/feedback.py) becomes labels too: 👍 on an answer makes its first citation relevant, and 👎
saying "the notes don't cover this" makes the question off-topic.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from app import feedback
from ingest.segment import has_chinese

OFF = "off"
NO_SPLIT = "all"
# The split of questions labelled by feedback: the owner's own, evaluated beside the others.
FEEDBACK = "feedback"
_LATIN_RE = re.compile(r"[A-Za-z]")


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


def language(text: str) -> str:
    """zh, en, or mixed (Chinese with Latin words), as the labelled files say it."""
    if not has_chinese(text):
        return "en"
    return "mixed" if _LATIN_RE.search(text) else "zh"


def from_feedback(records: list[dict]) -> list[Question]:
    """Labelled questions from feedback records, oldest first: 👍 with a citation -> its first citation's post
    is relevant; 👎 with reason "not_covered" -> off-topic. Other verdicts say what is wrong but not what is
    right, and teach nothing. A question given feedback twice keeps the later label, in the later place."""
    labelled: dict[str, Question] = {}
    for rec in records:
        text = rec.get("question")
        if not isinstance(text, str) or not text.strip():
            continue
        text = text.strip()
        citations = [c for c in rec.get("citations") or [] if isinstance(c, dict) and c.get("post_id")]
        if rec.get("verdict") == "up" and citations:
            first = min(citations, key=lambda c: c.get("n", 0))
            q = Question(text, frozenset([str(first["post_id"])]), language(text), FEEDBACK)
        elif rec.get("verdict") == "down" and rec.get("reason") == "not_covered":
            q = Question(text, frozenset(), OFF, FEEDBACK)
        else:
            continue
        labelled.pop(text, None)
        labelled[text] = q
    return list(labelled.values())


def load_feedback(path: Path) -> list[Question]:
    return from_feedback(feedback.read(path))
