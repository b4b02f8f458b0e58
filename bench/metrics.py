"""Score rankings and answers against labels: (ranked posts | answers, questions) -> averages per slice. Pure."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from bench.questions import Question

DEPTH = 10
ALL = "all"


@dataclass(frozen=True)
class Answered:
    """What an evaluation needs of one answer: was it given, and which post its first citation names."""

    found: bool
    first_post: str | None


def first_rank(ranking: list[str], relevant: frozenset[str], depth: int = DEPTH) -> int | None:
    """1-based position of the first relevant post within `depth`, else None."""
    return next((i for i, p in enumerate(ranking[:depth], start=1) if p in relevant), None)


def _slices(q: Question) -> list[tuple[str, str]]:
    return [(q.split, q.lang)] + ([(q.split, ALL)] if not q.off_topic else [])


def retrieval(rankings: list[list[str]], questions: list[Question]) -> dict[tuple[str, str], dict[str, float]]:
    """R@1, R@5 and MRR@10 per (split, language), over on-topic questions; `n` counts them."""
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for ranking, q in zip(rankings, questions, strict=True):
        if q.off_topic:
            continue
        rank = first_rank(ranking, q.relevant)
        for s in _slices(q):
            sums[s]["n"] += 1
            sums[s]["R@1"] += rank == 1
            sums[s]["R@5"] += rank is not None and rank <= 5
            sums[s]["MRR@10"] += 1 / rank if rank else 0.0
    return {s: {m: v if m == "n" else v / d["n"] for m, v in d.items()} for s, d in sums.items()}


def answers(results: list[Answered], questions: list[Question]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (split, language): the share refused, and for on-topic questions the share whose first citation is relevant."""
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for a, q in zip(results, questions, strict=True):
        for s in _slices(q):
            sums[s]["n"] += 1
            sums[s]["refused"] += not a.found
            sums[s]["first citation relevant"] += a.found and a.first_post in q.relevant
    return {s: {m: v if m == "n" else v / d["n"] for m, v in d.items()} for s, d in sums.items()}
