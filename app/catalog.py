"""An index's posts as arrays, made once per served build: Index -> post order, chunk-to-post map, post vectors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.filters import Filters, chunk_mask
from app.related import by_mean
from app.related import post_vectors as mean_vectors
from ingest.index import Index
from ingest.read import Post


@dataclass(frozen=True)
class Catalog:
    posts: list[Post]
    position: dict[str, int]
    # chunk -> position of its post in `posts`
    chunk_post: np.ndarray
    # position -> the post's unit vector, the mean of its chunks
    vectors: np.ndarray

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Which chunks may be ranked under `filters`; None when there is nothing to filter."""
        return chunk_mask(self.posts, self.chunk_post, filters)

    def related(self, post_id: str, k: int) -> list[tuple[Post, float]]:
        """The k posts nearest to `post_id`, best first, never the post itself."""
        return [(self.posts[j], score) for j, score in by_mean(self.vectors, self.position[post_id], k)]


def catalog(index: Index) -> Catalog:
    posts = list(index.posts.values())
    position = {p.post_id: i for i, p in enumerate(posts)}
    chunk_post = np.fromiter((position[c.post_id] for c in index.chunks), dtype=np.int64, count=len(index.chunks))
    return Catalog(posts, position, chunk_post, mean_vectors(index.vectors, chunk_post, len(posts)))
