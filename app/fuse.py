"""Fuse BM25 and dense results into one ranking: scored candidates -> ranked list. Pure functions, no I/O."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    chunk: int
    score: float
    bm25: float = 0.0
    dense: float = 0.0


def rrf(rankings: list[list[int]], weights: list[float] | None = None, k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return fused


def convex(bm25: dict[int, float], dense: dict[int, float], alpha: float) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * bm25, both already normalised to [0, 1]; a missing score counts 0."""
    items = set(bm25) | set(dense)
    return {i: alpha * dense.get(i, 0.0) + (1 - alpha) * bm25.get(i, 0.0) for i in items}


def ranked(scores: dict[int, float], bm25: dict[int, float], dense: dict[int, float]) -> list[Hit]:
    """Hits best first; ties go to the lower chunk number so results are deterministic."""
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [Hit(i, scores[i], bm25.get(i, 0.0), dense.get(i, 0.0)) for i in order]


def distinct_posts_first(hits: list[Hit], post_of: list[str]) -> list[Hit]:
    """The best hit of each post in score order, then the remaining hits in score order."""
    seen: set[str] = set()
    first: list[Hit] = []
    rest: list[Hit] = []
    for h in hits:
        (rest if post_of[h.chunk] in seen else first).append(h)
        seen.add(post_of[h.chunk])
    return first + rest
