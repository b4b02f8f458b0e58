"""The served index, embedder and model: loaded once, the index swapped when ingest publishes a newer build."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from typing import AsyncIterator

from app.answer import Answer, extractive
from app.batch import BatchedQueries, CachedQueries
from app.catalog import Catalog, catalog
from app.filters import Filters
from app.followup import standalone
from app.generate import generate, generate_stream
from app.llm import ChatClient
from app.retrieve import Retrieval, Retriever
from app.settings import Settings
from ingest.embed import Embedder, load_embedder
from ingest.errors import IndexCorrupt, IndexNotReady, NotesError
from ingest.index import Index, current_version, open_index
from ingest.segment import segment

log = logging.getLogger("app")


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        embedder = embedder or load_embedder(settings.embedder, settings.engine_options())
        self.embedder = CachedQueries(BatchedQueries(embedder, settings.batch_size))
        self._retriever: Retriever | None = None
        self._catalog: tuple[Index, Catalog] | None = None
        self._error: NotesError | None = None
        self._seen: str | None = None
        self._lock = threading.Lock()
        # Why the build in CURRENT is not the one served, until a build loads again; for /healthz.
        self.reload_error: str | None = None
        # Published builds that failed to load since start-up; for /metrics.
        self.reload_failures = 0
        self.llm = (
            ChatClient(
                settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout,
                settings.llm_max_tokens, settings.llm_concurrency,
            )
            if settings.llm_base_url and settings.llm_model
            else None
        )
        if settings.llm_base_url and not settings.llm_model:
            log.warning("NOTES_LLM_BASE_URL is set but NOTES_LLM_MODEL is not; answers stay extractive")
        # Pay for jieba's dictionary and the model's first call now, not on the first request.
        segment("预热 warm-up")
        self.embedder.queries(["预热 warm-up"])
        self.reload()

    @property
    def retriever(self) -> Retriever:
        """The current retriever; a request keeps the one it got even if a reload swaps it meanwhile."""
        retriever = self._retriever
        if retriever is None:
            raise self._error or IndexNotReady(f"No index in {self.settings.index_dir}/; run `python -m ingest` first.")
        return retriever

    def catalog(self, retriever: Retriever) -> Catalog:
        """The posts of `retriever`'s build as arrays: made when the build is loaded, or now for a request
        that still holds the build served before."""
        cached = self._catalog
        if cached is None or cached[0] is not retriever.index:
            cached = self._catalog = (retriever.index, catalog(retriever.index))
        return cached[1]

    def reload(self) -> bool:
        """Load the current build if it is not the one served; True when a new build was swapped in.

        Never raises: a build that cannot be loaded, for whatever reason, is logged once and skipped,
        and the served build stays until CURRENT names one that loads.
        """
        with self._lock:
            try:
                version = current_version(self.settings.index_dir)
                if version == self._seen and (self._retriever or self._error):
                    return False
                self._seen = version
                index = open_index(self.settings.index_dir, self.embedder.name)
                retriever = Retriever(index, self.embedder)
                posts = catalog(index)  # made here, so that no request waits for it
            except Exception as exc:
                # A hand-edited manifest fails with KeyError or TypeError as easily as with our own errors.
                error = exc if isinstance(exc, NotesError) else IndexCorrupt(
                    f"Index {self._seen} cannot be loaded ({type(exc).__name__}: {exc}). "
                    "Rebuild it with `python -m ingest --full`."
                )
                log.warning("index %s not loaded: %s", self._seen, error)
                self.reload_error = str(error)
                self.reload_failures += not isinstance(error, IndexNotReady)  # no build yet is no failed one
                if self._retriever is None:
                    self._error = error
                return False
            self._retriever, self._catalog = retriever, (index, posts)
            self._error = self.reload_error = None
            log.info("serving index %s (%d posts, %d chunks)", index.version, len(index.posts), len(index.chunks))
            # A full garbage collection walks every object of the index and of jieba's dictionary: 20 ms that
            # would land on some request (docs/benchmarks.md). Frozen once loaded, they are not walked again;
            # the previous build's objects are unfrozen and collected first.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            return True

    @property
    def served(self) -> Index | None:
        """The index served right now, or None; never raises (for /metrics and feedback records)."""
        retriever = self._retriever
        return retriever.index if retriever else None

    @property
    def mode(self) -> str:
        return "llm" if self.llm else "extractive"

    def check_model(self) -> None:
        """ModelBusy when every model slot is taken: refused up front, before a stream opens."""
        if self.llm is not None:
            self.llm.check_free()

    async def retrieve(
        self, question: str, top_k: int, history: list[dict], filters: Filters = Filters()
    ) -> tuple[Retriever, Retrieval]:
        """Search with the standalone form of the question, on the build served right now, among the
        posts that pass `filters`: a filter that leaves nothing gives no hits, hence "not covered"."""
        retriever = self.retriever
        allowed = self.catalog(retriever).mask(filters)
        query = await standalone(question, history, retriever, self.llm)
        # Awaited here rather than inside search: a question waiting for its batch holds no worker thread.
        started = time.perf_counter()
        vector = await self.embedder.query(retriever.embedding_text(query))
        embed_ms = (time.perf_counter() - started) * 1000
        return retriever, await asyncio.to_thread(
            retriever.search, query, top_k, vector=vector, embed_ms=embed_ms, allowed=allowed
        )

    async def answer(self, question: str, top_k: int, history: list[dict], filters: Filters = Filters()) -> Answer:
        retriever, r = await self.retrieve(question, top_k, history, filters)
        started = time.perf_counter()
        if self.llm is None:
            return timed(await asyncio.to_thread(extractive, retriever, r, question, top_k), started)
        return timed(await generate(retriever, self.llm, r, question, top_k), started)

    async def stream(self, retriever: Retriever, r: Retrieval, question: str, top_k: int) -> AsyncIterator[str | Answer]:
        """Text pieces as they are generated, then the final Answer; extractive mode yields only the Answer."""
        started = time.perf_counter()
        if self.llm is None:
            yield timed(await asyncio.to_thread(extractive, retriever, r, question, top_k), started)
            return
        async with contextlib.aclosing(generate_stream(retriever, self.llm, r, question, top_k)) as items:
            async for item in items:
                yield item if isinstance(item, str) else timed(item, started)


def timed(a: Answer, started: float) -> Answer:
    """`a` with the time since `started` as its last stage: "llm" when the model was asked (even if its
    answer was then replaced), "answer" when the notes were quoted without it."""
    stage = "llm" if a.mode == "llm" or a.fallback else "answer"
    a.timings_ms = {**a.timings_ms, stage: round((time.perf_counter() - started) * 1000, 2)}
    return a
