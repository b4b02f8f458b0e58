"""Hybrid retrieval: a question -> BM25 and dense candidates -> one fused list of chunks, with evidence."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from app import abstain, fuse
from app.expand import Query, query
from app.filters import dense_within, terms_within
from app.fuse import Hit
from ingest import bridge, probes
from ingest.embed import Embedder
from ingest.chunk import Chunk
from ingest.index import Index
from ingest.segment import segment

CANDIDATES = 50
SAMPLE = 512
METHODS = ("hybrid", "dense", "bm25", "rrf")


@dataclass(frozen=True)
class Candidates:
    """What each side found for one question, on its own scale, and the evidence for abstention."""

    query: Query
    vector: np.ndarray
    dense: dict[int, float]  # cosine of each dense candidate
    bm25: dict[int, float]  # BM25 of each lexical candidate
    floor: float  # the corpus's crowd cosine for this question
    coverage: float  # share of the question's BM25 weight the corpus knows


@dataclass
class Retrieval:
    tokens: list[str]
    vector: np.ndarray
    hits: list[Hit]
    # Evidence for abstention (app/abstain.py): the best cosine above the crowd, the share of the
    # question's vocabulary the corpus knows, and whether together they clear this corpus's bar.
    lift: float = 0.0
    coverage: float = 0.0
    covered: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.lexsort((idx, -scores[idx]))]


def openers(chunks: list[Chunk]) -> frozenset[int]:
    """The chunks that open a post. Not those that open a section: once Markdown headings were read as such
    (setext ones included), counting them lost 0.004 zh and 0.007 en MRR on devbench `tune` (docs/benchmarks.md)."""
    return frozenset(i for i, c in enumerate(chunks) if c.ord == 0 or chunks[i - 1].post_id != c.post_id)


def fused(c: Candidates, method: str, policy: fuse.Policy, opening: frozenset[int] = frozenset()) -> dict[int, float]:
    """One score per candidate chunk: the policy's convex combination, or one side, or plain RRF."""
    if method == "dense":
        return c.dense
    if method == "bm25":
        return c.bm25
    if method == "rrf":
        return fuse.rrf([fuse.by_score(c.dense), fuse.by_score(c.bm25)])
    combined = fuse.convex(fuse.over_best(c.bm25), fuse.lift(c.dense, c.floor), policy)
    return fuse.lead(combined, opening, policy.lead)


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
        self.bridge: dict = index.extras.get("bridge", {})
        self._openers = openers(index.chunks)
        self.calibration = self._calibrate()

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

    def _calibrate(self) -> abstain.Calibration:
        """The abstention bar of this corpus, from its probe questions' evidence."""
        evidence = self.probe_evidence()
        return abstain.calibrate([e[0] for e in evidence], [e[1] for e in evidence])

    def probe_evidence(self) -> list[tuple[float, float]]:
        """Lift and coverage of each probe question, embedded by ingest (or now, when it was not)."""
        texts = probes.questions()
        embedded = [bridge.embedding_text(t, self.bridge) for t in texts]
        stored = self.index.extras.get("probes") or {}
        # Only the vectors of the engine that embeds real questions: another engine's differ just enough
        # to move the bar (one off-topic question of the seed set).
        mine = (stored.get("embedder"), stored.get("engine")) == (self.embedder.name, self.embedder.engine)
        if mine and stored.get("texts") == embedded:
            vectors = np.asarray(stored["vectors"], dtype=np.float32)
        else:
            # In batches: a build ingested on another engine than the questions' comes without them (0.1 s).
            vectors = self.embedder.queries(embedded)
        return [self._evidence(self.candidates(t, v)) for t, v in zip(texts, vectors)]

    def candidates(
        self, question: str, vector: np.ndarray, allowed: np.ndarray | None = None, tokens: list[str] | None = None
    ) -> Candidates:
        """The top chunks of each side for one question, each on its own normalised scale; `allowed`, a
        boolean per chunk (app/filters.py), limits both sides and the coverage to those chunks; `tokens`,
        when the caller segmented the question already."""
        q = query(question, segment(question) if tokens is None else tokens, self.bridge)
        n = len(self.index.chunks)
        if allowed is None:
            cos, ids = self.index.dense.search(vector[None, :].astype(np.float32), min(CANDIDATES, n))
        else:
            cos, ids = dense_within(self.index.vectors, vector, allowed, CANDIDATES)
        dense = {int(i): float(c) for c, i in zip(cos[0], ids[0]) if i >= 0}
        raw = self.index.bm25.weighted_scores(q.weights)
        terms = self.index.bm25.terms
        if allowed is not None:
            raw = np.where(allowed, raw, 0.0)
            terms = terms_within(self.index.bm25, q.weights, allowed)
        weight = self.weights(list(q.weights))
        ceiling = sum(weight[t] * w for t, w in q.weights.items())
        known = sum(weight[t] * w for t, w in q.weights.items() if t in terms)
        bm25 = {int(i): float(raw[i]) for i in _top(raw, CANDIDATES) if raw[i] > 0}
        floor = float(np.median(self._sample @ vector)) if len(self._sample) else 0.0
        return Candidates(q, vector, dense, bm25, floor, known / ceiling if ceiling > 0 else 0.0)

    def _evidence(self, c: Candidates) -> tuple[float, float]:
        """Lift and coverage (app/abstain.py). Only a passage that can answer counts for the lift: a line of
        links or a piece of code that looks like an English question shows nothing about the notes covering it."""
        chunks = self.index.chunks
        best = max((cos for i, cos in c.dense.items() if chunks[i].answers), default=0.0)
        return fuse.lift({0: best}, c.floor)[0], c.coverage

    def embedding_text(self, question: str) -> str:
        """What is embedded for a question: an English one with its Chinese translations, as the notes are Chinese."""
        return bridge.embedding_text(question, self.bridge)

    def search(
        self, question: str, k: int = 10, method: str = "hybrid", vector: np.ndarray | None = None,
        embed_ms: float = 0.0, allowed: np.ndarray | None = None,
    ) -> Retrieval:
        """The best chunks for `question`; `vector`, when the caller embedded `embedding_text(question)` itself;
        `allowed`, a boolean per chunk, limits ranking to those chunks (app/filters.py)."""
        t0 = time.perf_counter()
        if vector is None:
            vector = self.embedder.queries([self.embedding_text(question)])[0]
        t1 = time.perf_counter()
        tokens = segment(question)
        t_seg = time.perf_counter()
        c = self.candidates(question, vector, allowed, tokens)
        t2 = time.perf_counter()
        hits = fuse.ranked(fused(c, method, fuse.policy_for(question), self._openers), c.bm25, c.dense)[:k]
        # Fill in both evidence values for hits found by one side only.
        vectors = self.index.vectors
        hits = [Hit(h.chunk, h.score, c.bm25.get(h.chunk, 0.0), float(vectors[h.chunk] @ vector)) for h in hits]
        lift, coverage = self._evidence(c)
        t3 = time.perf_counter()
        timings = {"segment": t_seg - t1, "embed": t1 - t0 + embed_ms / 1000, "search": t2 - t_seg, "fuse": t3 - t2}
        return Retrieval(
            list(c.query.weights), vector, hits, lift, coverage,
            bool(hits) and abstain.covered(lift, coverage, self.calibration),
            {name: round(v * 1000, 2) for name, v in timings.items()},
        )
