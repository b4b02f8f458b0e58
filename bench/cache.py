"""Remember embeddings on disk: (embedder, text) -> vector, so that repeated evaluation runs embed each text once.

A folder per embedder holds `keys.json` (one content hash per row) and `vectors.npy`; nothing is pickled.
Passages and questions are kept apart, since e5 embeds them with different prefixes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ingest.embed import Embedder


def _key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """An embedder that looks each text up on disk first and embeds only the texts it has never seen."""

    def __init__(self, embedder: Embedder, root: Path) -> None:
        self.name, self.dim = embedder.name, embedder.dim
        self._embedder = embedder
        self.folder = root / re.sub(r"[^0-9A-Za-z.-]+", "_", embedder.name)
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self._new: list[tuple[str, np.ndarray]] = []
        if (self.folder / "keys.json").is_file() and (self.folder / "vectors.npy").is_file():
            keys = json.loads((self.folder / "keys.json").read_text("utf-8"))
            vectors = np.load(self.folder / "vectors.npy", allow_pickle=False)
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
        """Append what was embedded in this run; written under temporary names, then renamed."""
        if not self._new:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._rows, key=self._rows.__getitem__) + [k for k, _ in self._new]
        vectors = np.vstack([self._vectors, np.vstack([v for _, v in self._new])])
        with open(self.folder / "vectors.npy.tmp", "wb") as f:
            np.save(f, vectors, allow_pickle=False)
        (self.folder / "keys.json.tmp").write_text(json.dumps(keys), "utf-8")
        os.replace(self.folder / "vectors.npy.tmp", self.folder / "vectors.npy")
        os.replace(self.folder / "keys.json.tmp", self.folder / "keys.json")
        self._rows = {k: i for i, k in enumerate(keys)}
        self._vectors = vectors
        self._new = []
