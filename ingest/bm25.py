"""BM25 with rank-bm25's BM25Okapi semantics as a sparse chunk-by-term weight matrix: tokens -> scores.

rank-bm25 loops in Python over every document for each question. Here each weight
idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) is computed once at ingest,
so scoring a question is one sparse product with its term counts.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import sparse

K1, B, EPSILON = 1.5, 0.75, 0.25


@dataclass(frozen=True)
class BM25:
    terms: dict[str, int]
    # Rows are chunks, columns terms; CSC so that picking a question's columns is cheap.
    weights: sparse.csc_matrix
    k1: float = K1
    b: float = B
    epsilon: float = EPSILON

    @property
    def n_docs(self) -> int:
        return self.weights.shape[0]

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25Okapi.get_scores for these tokens: a repeated token counts again, an unknown one adds 0."""
        return self.weighted_scores(dict(Counter(tokens)))

    def weighted_scores(self, query: dict[str, float]) -> np.ndarray:
        """Each term's BM25 weight times its query weight, summed per chunk; an unknown term adds 0."""
        known = {self.terms[t]: w for t, w in query.items() if t in self.terms and w}
        if not known:
            return np.zeros(self.n_docs, dtype=np.float64)
        cols = np.fromiter(known.keys(), dtype=np.int64, count=len(known))
        reps = np.fromiter(known.values(), dtype=np.float64, count=len(known))
        return np.asarray(self.weights[:, cols] @ reps).ravel()


def build(docs: list[list[str]], k1: float = K1, b: float = B, epsilon: float = EPSILON) -> BM25:
    terms: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    tfs: list[int] = []
    for d, doc in enumerate(docs):
        for term, tf in Counter(doc).items():
            rows.append(d)
            cols.append(terms.setdefault(term, len(terms)))
            tfs.append(tf)
    n = len(docs)
    row = np.asarray(rows, dtype=np.int64)
    col = np.asarray(cols, dtype=np.int64)
    tf = np.asarray(tfs, dtype=np.float64)
    df = np.bincount(col, minlength=len(terms)).astype(np.float64)
    # rank-bm25 computes idf with math.log term by term; do the same so scores agree to the last bit.
    idf = np.array([math.log(n - f + 0.5) - math.log(f + 0.5) for f in df], dtype=np.float64)
    if len(idf):
        # Terms in more than half the documents would score negative: rank-bm25 floors them
        # at epsilon times the mean idf.
        idf[idf < 0] = epsilon * (float(sum(idf.tolist())) / len(idf))
    doc_len = np.array([len(doc) for doc in docs], dtype=np.float64)
    avgdl = float(doc_len.sum() / n) if n and doc_len.sum() else 1.0
    norm = k1 * (1 - b + b * doc_len[row] / avgdl)
    data = idf[col] * (tf * (k1 + 1) / (tf + norm))
    weights = sparse.csc_matrix((data, (row, col)), shape=(n, len(terms)), dtype=np.float64)
    return BM25(terms, weights, k1, b, epsilon)
