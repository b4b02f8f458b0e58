"""Remember embeddings on disk: (embedder, text) -> vector, so that repeated evaluation runs embed each text once.

A folder per embedder holds `cache.npz`: `keys` (one content hash per row) and `vectors`, replaced in one
rename so that a concurrent run never reads half of it. Nothing is pickled. Passages and questions are kept
apart, since e5 embeds them with different prefixes.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from ingest.embed import Embedder

FILE = "cache.npz"

def _key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """An embedder that looks each text up on disk first and embeds only the texts it has never seen."""

    def __init__(self, embedder: Embedder, root: Path) -> None:
        self.name, self.dim, self.engine = embedder.name, embedder.dim, embedder.engine
        self._embedder = embedder
        # Engines of one model agree closely, not exactly: each keeps its own vectors.
        self.folder = root / re.sub(r"[^0-9A-Za-z.-]+", "_", f"{embedder.name}-{embedder.engine}")
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self._new: list[tuple[str, np.ndarray]] = []
        if (self.folder / FILE).is_file():
            with np.load(self.folder / FILE, allow_pickle=False) as z:
                keys, vectors = z["keys"].tolist(), z["vectors"]
            if len(keys) == len(vectors) and vectors.shape[1:] == (embedder.dim,):
                self._rows = {k: i for i, k in enumerate(keys)}
                self._vectors = vectors
        self.hits = 0
        self.misses = 0

    def _lookup(self, kind: str, texts: list[str], embed_one_by_one: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        fresh = {k: v for k, v in self._new}
        todo: list[int] = []
        for i, text in enumerate(texts):
            key = _key(kind, text)
            if key in self._rows:
                out[i] = self._vectors[self._rows[key]]
            elif key in fresh:
                out[i] = fresh[key]
            else:
                todo.append(i)
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            embed = self._embedder.queries if kind == "q" else self._embedder.passages
            # A question is embedded alone, as the server does; passages in the batches the build gives.
            vectors = (
                np.vstack([embed([texts[i]]) for i in todo]) if embed_one_by_one else embed([texts[i] for i in todo])
            )
            for i, v in zip(todo, vectors):
                out[i] = v
                self._new.append((_key(kind, texts[i]), v.astype(np.float32)))
        return out

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._lookup("p", list(texts), embed_one_by_one=False)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._lookup("q", list(texts), embed_one_by_one=True)

    def save(self) -> None:
        """Add what this run embedded to what is on disk now (another run may have saved meanwhile)."""
        if not self._new:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        on_disk = EmbeddingCache(_Named(self.name, self.dim, self.engine), self.folder.parent)
        rows, vectors = dict(on_disk._rows), [on_disk._vectors]
        for key, vector in self._new:
            if key not in rows:
                rows[key] = len(rows)
                vectors.append(vector[None, :])
        keys = sorted(rows, key=rows.__getitem__)
        matrix = np.vstack(vectors).astype(np.float32)
        tmp = self.folder / f".{FILE}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype="<U32"), vectors=matrix)
        os.replace(tmp, self.folder / FILE)
        self._rows, self._vectors, self._new = {k: i for i, k in enumerate(keys)}, matrix, []


class _Named:
    """Only the name, dimension and engine of an embedder, for reading its cache."""

    def __init__(self, name: str, dim: int, engine: str) -> None:
        self.name, self.dim, self.engine = name, dim, engine
