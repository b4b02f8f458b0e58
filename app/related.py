"""Related notes: chunk vectors grouped by post -> the nearest other posts, with scores. Pure functions."""
from __future__ import annotations

import numpy as np
from scipy import sparse

# How two posts are compared; chosen on ../shared/devbench with `python -m bench.related` (docs/benchmarks.md).
METHODS = ("mean", "max")


def post_vectors(vectors: np.ndarray, chunk_post: np.ndarray, n_posts: int) -> np.ndarray:
    """One unit vector per post: the normalised mean of its chunks' vectors."""
    # A post-by-chunk incidence matrix sums them in one product: 0.44 s at 100k chunks, np.add.at 2.5 s.
    members = sparse.csr_matrix(
        (np.ones(len(chunk_post), dtype=np.float64), (chunk_post, np.arange(len(chunk_post)))),
        shape=(n_posts, len(chunk_post)),
    )
    sums = np.asarray(members @ vectors.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def _best(scores: np.ndarray, post: int, k: int) -> list[tuple[int, float]]:
    """The k highest-scoring posts other than `post`, ties to the lower position."""
    scores = scores.astype(np.float64).copy()
    scores[post] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return [(int(j), float(scores[j])) for j in order if np.isfinite(scores[j])]


def by_mean(post_vecs: np.ndarray, post: int, k: int) -> list[tuple[int, float]]:
    """Nearest posts by the cosine of their mean vectors."""
    return _best(post_vecs @ post_vecs[post], post, k)


def by_max(vectors: np.ndarray, chunk_post: np.ndarray, n_posts: int, post: int, k: int) -> list[tuple[int, float]]:
    """Nearest posts by their closest pair of chunks, one chunk from each post; a post's own chunks are
    never compared with each other, since the post itself is left out."""
    own = vectors[chunk_post == post]
    pair = (vectors @ own.T).max(axis=1) if len(own) else np.full(len(vectors), -np.inf)
    scores = np.full(n_posts, -np.inf)
    np.maximum.at(scores, chunk_post, pair)
    return _best(scores, post, k)
