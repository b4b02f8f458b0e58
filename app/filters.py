"""Tag and date filters: Filters + an index -> which chunks may be ranked, and search within them. Pure functions."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ingest.bm25 import BM25
from ingest.read import Post

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Filters:
    """Posts with any of `tags` (case-insensitive), dated from `since` to `until` inclusive; empty means all."""

    tags: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None

    def __bool__(self) -> bool:
        return bool(self.tags) or self.since is not None or self.until is not None


def post_date(post: Post) -> dt.date | None:
    """A post's date when its front matter gives one as YYYY-MM-DD (a time after it is ignored)."""
    if not post.date or not _DATE_RE.match(post.date):
        return None
    try:
        return dt.date.fromisoformat(post.date[:10])
    except ValueError:
        return None


def matches(post: Post, filters: Filters) -> bool:
    """Does `post` pass? A post without a readable date never passes a date bound: it cannot be placed."""
    if filters.tags and not {t.casefold() for t in post.tags} & {t.casefold() for t in filters.tags}:
        return False
    if filters.since is None and filters.until is None:
        return True
    date = post_date(post)
    return (
        date is not None
        and (filters.since is None or date >= filters.since)
        and (filters.until is None or date <= filters.until)
    )


def chunk_mask(posts: list[Post], chunk_post: np.ndarray, filters: Filters) -> np.ndarray | None:
    """True for every chunk whose post passes (`chunk_post[c]` is the position of chunk c's post in
    `posts`); None when nothing is filtered, so that search runs exactly as without filters."""
    if not filters:
        return None
    passing = np.fromiter((matches(p, filters) for p in posts), dtype=bool, count=len(posts))
    return passing[chunk_post] if len(chunk_post) else np.zeros(0, dtype=bool)


def dense_within(vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` allowed chunks nearest to `query`, searched exactly among the allowed vectors alone, in the
    shape FAISS returns ((1, n) scores, (1, n) ids), so that every result comes from the allowed set."""
    ids = np.flatnonzero(allowed)
    scores = vectors[ids] @ query
    order = np.argsort(-scores, kind="stable")[:n]
    return scores[order][None, :].astype(np.float32), ids[order][None, :]


def terms_within(bm25: BM25, terms: Iterable[str], allowed: np.ndarray) -> set[str]:
    """Those of `terms` that some allowed chunk contains: the abstention's "coverage" is measured on the notes
    a filter leaves, not on all of them, so that a question the filtered notes never mention is not covered."""
    w = bm25.weights
    return {
        t for t in terms
        if t in bm25.terms and allowed[w.indices[w.indptr[bm25.terms[t]] : w.indptr[bm25.terms[t] + 1]]].any()
    }


def tag_counts(posts: dict[str, Post]) -> dict[str, int]:
    """{tag: number of posts}, most used first, then by name; tags differing only in case are one tag."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for post in posts.values():
        for tag in {t.casefold(): t for t in post.tags}.values():
            key = names.setdefault(tag.casefold(), tag)
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold())))
