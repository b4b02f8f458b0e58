"""A question's BM25 side across languages: (question, the corpus's mined bridge) -> weighted search terms.

English questions over Chinese notes share few words with them. The bridge that ingest mined from the
corpus (ingest/bridge.py) maps "receptive field" to 感受野; each translation joins the question's BM25
terms at a weight that falls with its ambiguity.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ingest.bridge import translations
from ingest.segment import segment

# Weight of a translated term against one of the question's own words, before its share of ambiguity.
TRANSLATION_WEIGHT = 2.0


@lru_cache(maxsize=4096)
def _tokens(term: str) -> tuple[str, ...]:
    return tuple(segment(term))


@dataclass(frozen=True)
class Query:
    """The BM25 side of a question: each search term with its weight, and the translations that were added."""

    weights: dict[str, float]
    translations: tuple[str, ...] = ()


def query(question: str, tokens: list[str], bridge: dict, weight: float = TRANSLATION_WEIGHT) -> Query:
    """The question's own tokens at weight 1 each (repeats add up), then the Chinese translations of its
    English terms (ingest.bridge.translations) at `weight` times their share."""
    weights: dict[str, float] = {t: float(n) for t, n in Counter(tokens).items()}
    added: list[str] = []
    for zh, share in translations(question, bridge):
        parts = _tokens(zh)
        for t in parts:
            weights[t] = weights.get(t, 0.0) + weight * share
        added += [zh] if parts else []
    return Query(weights, tuple(dict.fromkeys(added)))
