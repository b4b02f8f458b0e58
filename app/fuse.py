"""Fuse BM25 and dense candidates into one ranking: scored candidates + a policy -> ranked hits. Pure, no I/O.

Each side is first put on a common [0, 1] scale (the normalisers), then combined by the policy of the
question's language: a convex combination (the served hybrid) or reciprocal rank fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

from ingest.segment import has_chinese


@dataclass(frozen=True)
class Hit:
    chunk: int
    score: float
    bm25: float = 0.0
    dense: float = 0.0


@dataclass(frozen=True)
class Policy:
    """How much each side counts (the weights need not add up to 1), and the bonus of a section's opening chunk."""

    dense: float
    bm25: float
    lead: float = 0.25


# Chosen on the development benchmark's `tune` questions with `python -m bench.eval`, under the condition
# of no loss on the project's own labelled questions (docs/benchmarks.md). English questions over Chinese
# notes share few words with them, even through the bridge, so they lean harder on the embedding.
CJK = Policy(dense=0.9, bm25=0.3)
LATIN = Policy(dense=0.7, bm25=0.05)


def policy_for(question: str) -> Policy:
    return CJK if has_chinese(question) else LATIN


def lift(cosines: dict[int, float], floor: float) -> dict[int, float]:
    """Cosines measured above the corpus's crowd level `floor`, as a share of the room above it; below it, 0.

    e5 cosines crowd into a narrow band (0.75-0.95), so the raw value says little until the crowd is removed.
    """
    room = max(1e-6, 1.0 - floor)
    return {i: max(0.0, c - floor) / room for i, c in cosines.items()}


def over_best(scores: dict[int, float]) -> dict[int, float]:
    """Scores as a share of the best one, so that the best candidate of a side always counts 1.

    Measured against dividing BM25 by what a chunk holding every question term would score: that
    scale moves with how many question words the corpus knows, and the fusion weights did not carry
    from one corpus to another (docs/benchmarks.md).
    """
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return {i: 0.0 for i in scores}
    return {i: s / best for i, s in scores.items()}


def convex(bm25: dict[int, float], dense: dict[int, float], policy: Policy) -> dict[int, float]:
    """policy.dense * dense + policy.bm25 * bm25, both already normalised; a missing score counts 0."""
    items = set(bm25) | set(dense)
    return {i: policy.dense * dense.get(i, 0.0) + policy.bm25 * bm25.get(i, 0.0) for i in items}


def lead(scores: dict[int, float], openers: frozenset[int], bonus: float) -> dict[int, float]:
    """A chunk that opens its post or section scores (1 + bonus) times as much.

    A note's opening states what it is about and the later chunks go into details, so for a question
    about the subject the opening is the better passage.
    """
    return {i: s * (1.0 + bonus) if i in openers else s for i, s in scores.items()}


def rrf(rankings: list[list[int]], weights: list[float] | None = None, k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return fused


def by_score(scores: dict[int, float]) -> list[int]:
    """Items best first; ties go to the lower number."""
    return sorted(scores, key=lambda i: (-scores[i], i))


def ranked(scores: dict[int, float], bm25: dict[int, float], dense: dict[int, float]) -> list[Hit]:
    """Hits best first; ties go to the lower chunk number so results are deterministic."""
    return [Hit(i, scores[i], bm25.get(i, 0.0), dense.get(i, 0.0)) for i in by_score(scores)]


def distinct_posts_first(hits: list[Hit], post_of: list[str]) -> list[Hit]:
    """The best hit of each post in score order, then the remaining hits in score order."""
    seen: set[str] = set()
    first: list[Hit] = []
    rest: list[Hit] = []
    for h in hits:
        (rest if post_of[h.chunk] in seen else first).append(h)
        seen.add(post_of[h.chunk])
    return first + rest
