"""Hybrid retrieval: a question -> BM25 and dense candidates -> one fused list of chunks, with evidence."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from app.expand import expand
from app.filters import coverage_within, dense_within
from app.fuse import Hit, convex, ranked, rrf
from ingest.embed import Embedder
from ingest.segment import has_chinese, segment
from ingest.index import Index

CANDIDATES = 50
SAMPLE = 512
# Chosen on tests/data/eval_questions.jsonl with `python -m app.eval` (see docs/benchmarks.md).
# Weight of the dense side: English questions over Chinese notes share few words with them,
# so they lean on the embedding; Chinese and mixed questions lean on both.
ALPHA_CJK = 0.45
ALPHA_LATIN = 0.7
METHODS = ("hybrid", "dense", "bm25", "rrf")


@dataclass
class Retrieval:
    tokens: list[str]
    vector: np.ndarray
    hits: list[Hit]
    # Evidence for abstention: how far the best cosine stands above the crowd,
    # and the share of the question's idf mass that the corpus knows.
    cosine_margin: float = 0.0
    coverage: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.lexsort((idx, -scores[idx]))]


class Retriever:
    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        bm = index.bm25
        # The largest idf in the corpus stands in for a question word the corpus has never seen.
        idf_cols = np.asarray(bm.weights.max(axis=0).todense()).ravel() if bm.weights.shape[1] else np.zeros(0)
        self._max_term_weight = float(idf_cols.max()) if len(idf_cols) else 1.0
        self._term_weight = idf_cols
        # A fixed spread of chunks whose median cosine to a question is its "crowd" level.
        n = len(index.chunks)
        self._sentence_words: dict[int, frozenset[str]] = {}
        self._sample = index.vectors[np.linspace(0, n - 1, num=min(n, SAMPLE), dtype=np.int64)] if n else index.vectors

    def weights(self, tokens: list[str]) -> dict[str, float]:
        """Each word's largest BM25 weight; a word the notes never use weighs as much as the rarest one."""
        terms = self.index.bm25.terms
        return {t: float(self._term_weight[terms[t]]) if t in terms else self._max_term_weight for t in tokens}

    def sentence_words(self, sid: int) -> frozenset[str]:
        """The search tokens of one stored sentence, segmented once per loaded build."""
        words = self._sentence_words.get(sid)
        if words is None:
            words = self._sentence_words[sid] = frozenset(segment(self.index.sentences[sid]))
        return words

    def _bm25_norm(self, tokens: list[str], raw: np.ndarray) -> tuple[np.ndarray, float]:
        """BM25 scores divided by what a chunk matching every question word would get, and the coverage."""
        terms = self.index.bm25.terms
        weight = self.weights(tokens)
        ceiling = sum(weight[t] for t in tokens)
        known = sum(weight[t] for t in tokens if t in terms)
        if ceiling <= 0:
            return np.zeros_like(raw), 0.0
        return raw / ceiling, known / ceiling

    def search(self, question: str, k: int = 10, method: str = "hybrid", allowed: np.ndarray | None = None) -> Retrieval:
        """`allowed`, a boolean per chunk, limits ranking to those chunks (app/filters.py)."""
        t0 = time.perf_counter()
        # The glossary helps the lexical side across languages; the embedding is multilingual already
        # and measured worse with the added terms.
        tokens = segment(expand(question))
        t1 = time.perf_counter()
        vector = self.embedder.queries([question])[0]
        t2 = time.perf_counter()
        n = len(self.index.chunks)
        if allowed is None:
            cos, ids = self.index.dense.search(vector[None, :].astype(np.float32), min(CANDIDATES, n))
        else:
            cos, ids = dense_within(self.index.vectors, vector, allowed, CANDIDATES)
        dense = {int(i): float(c) for c, i in zip(cos[0], ids[0]) if i >= 0}
        raw = self.index.bm25.scores(tokens)
        if allowed is not None:
            raw = np.where(allowed, raw, 0.0)
        norm, coverage = self._bm25_norm(tokens, raw)
        if allowed is not None:
            coverage = coverage_within(self.index.bm25, tokens, allowed, self.weights(tokens))
        bm25 = {int(i): float(norm[i]) for i in _top(raw, CANDIDATES) if raw[i] > 0}
        t3 = time.perf_counter()

        floor = float(np.median(self._sample @ vector)) if len(self._sample) else 0.0
        margin = max(dense.values(), default=0.0) - floor
        if method == "dense":
            scores = dense
        elif method == "bm25":
            scores = bm25
        elif method == "rrf":
            scores = rrf([sorted(dense, key=lambda i: -dense[i]), sorted(bm25, key=lambda i: -bm25[i])])
        else:
            # Cosines of e5 crowd into a narrow band; measure each above the crowd.
            lifted = {i: max(0.0, c - floor) / max(1e-6, 1.0 - floor) for i, c in dense.items()}
            scores = convex(bm25, lifted, ALPHA_CJK if has_chinese(question) else ALPHA_LATIN)
        hits = ranked(scores, bm25, dense)[:k]
        # Fill in both evidence values for hits found by one side only.
        hits = [Hit(h.chunk, h.score, float(norm[h.chunk]), float(self.index.vectors[h.chunk] @ vector)) for h in hits]
        t4 = time.perf_counter()
        timings = {"segment": t1 - t0, "embed": t2 - t1, "search": t3 - t2, "fuse": t4 - t3}
        return Retrieval(
            tokens, vector, hits, margin, coverage,
            {name: round(v * 1000, 2) for name, v in timings.items()},
        )
