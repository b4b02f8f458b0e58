"""Bridge the two languages of a question: (question, the corpus's mined bridge) -> weighted search terms.

English questions over Chinese notes share few words with them. The bridge that ingest mined from the
corpus (ingest/bridge.py) maps "receptive field" to 感受野; each translation joins the question's BM25
terms at a weight that falls with its ambiguity. The embedding is multilingual already and is not expanded.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ingest.segment import has_chinese, segment

# Weight of a translated term against one of the question's own words, before its share of ambiguity.
TRANSLATION_WEIGHT = 2.0
MAX_WORDS = 4
_WORD_RE = re.compile(r"[a-z][a-z0-9+#'\-]*")


def variants(word: str) -> list[str]:
    """The word and its likely dictionary forms: gradients -> gradient, activations -> activation, learning -> learn."""
    out = [word]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            out.append(word[: -len(suffix)] + repl)
    return list(dict.fromkeys(out))


def english_terms(question: str, known: dict[str, list]) -> list[str]:
    """The bridge's English terms in the question, longest match first, left to right, without overlap."""
    words = _WORD_RE.findall(unicodedata.normalize("NFKC", question).lower())
    found: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            head = " ".join(words[i : i + n - 1])
            keys = [f"{head} {v}" if head else v for v in variants(words[i + n - 1])]
            hit = next((k for k in keys if k in known), None)
            if hit:
                found.append(hit)
                i += n
                break
        else:
            i += 1
    return found


@lru_cache(maxsize=4096)
def _tokens(term: str) -> tuple[str, ...]:
    return tuple(segment(term))


@dataclass(frozen=True)
class Query:
    """The BM25 side of a question: each search term with its weight, and the translations that were added."""

    weights: dict[str, float]
    translations: tuple[str, ...] = ()


def query(question: str, tokens: list[str], bridge: dict, weight: float = TRANSLATION_WEIGHT) -> Query:
    """The question's own tokens at weight 1 each (repeats add up), then, for a question without Chinese, the
    Chinese translations of its English terms at `weight` times their share.

    A question with Chinese in it already speaks the notes' language; its English words are names the
    notes use as they are ("Dropout 策略"), and translating them measured worse.
    """
    weights: dict[str, float] = {t: float(n) for t, n in Counter(tokens).items()}
    table = {} if has_chinese(question) else bridge.get("en", {})
    added: list[str] = []
    for term in english_terms(question, table):
        for zh, share in table[term]:
            if zh in question:
                continue
            parts = _tokens(zh)
            for t in parts:
                weights[t] = weights.get(t, 0.0) + weight * share
            added += [zh] if parts else []
    return Query(weights, tuple(dict.fromkeys(added)))
