"""Embed questions for many request threads: a question -> its vector, remembered, and batched dynamically.

As in text-embeddings-inference, nothing waits on purpose: the engine embeds whatever is queued the
moment it is free, so a lone question goes alone, and questions that arrive while the engine is busy
go together in its next batch, which costs little more than one of them.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable

import numpy as np

from ingest.embed import Embedder

Embed = Callable[[list[str]], np.ndarray]


class Batcher:
    def __init__(self, embed: Embed, max_batch: int = 32, name: str = "question-batcher") -> None:
        self._embed = embed
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future] | None] = queue.SimpleQueue()
        # One thread owns the engine: its calls never compete with each other for the cores.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, text: str) -> Future:
        """The vector of `text`, to come from whichever batch the engine runs next."""
        done: Future = Future()
        self._queue.put((text, done))
        return done

    def __call__(self, texts: list[str]) -> np.ndarray:
        waiting = [self.submit(text) for text in texts]
        return np.stack([done.result() for done in waiting]) if waiting else np.zeros((0, 0), np.float32)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _next_batch(self) -> list[tuple[str, Future]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            texts = list(dict.fromkeys(text for text, _ in batch))
            try:
                vectors = self._embed(texts)
                if len(vectors) != len(texts):
                    raise RuntimeError(f"the engine returned {len(vectors)} vectors for {len(texts)} texts")
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting requests, not swallowed
                for _, done in batch:
                    done.set_exception(exc)
                continue
            row = {text: i for i, text in enumerate(texts)}
            for text, done in batch:
                done.set_result(vectors[row[text]])


class BatchedQueries:
    """An embedder whose questions all go through one Batcher; passages are embedded as they come."""

    def __init__(self, embedder: Embedder, max_batch: int = 32) -> None:
        self.name, self.dim, self.engine = embedder.name, embedder.dim, embedder.engine
        self._embedder = embedder
        self._batcher = Batcher(embedder.queries, max_batch)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._embedder.passages(texts)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._batcher(texts) if texts else np.zeros((0, self.dim), np.float32)

    async def query(self, text: str) -> np.ndarray:
        """One question's vector, awaited without holding a thread while its batch waits for the engine."""
        return await asyncio.wrap_future(self._batcher.submit(text))

    def close(self) -> None:
        self._batcher.close()


class CachedQueries:
    """An embedder whose question vectors are remembered: a repeated question skips the model (~14 ms)."""

    def __init__(self, embedder: BatchedQueries, size: int = 2048) -> None:
        self.name, self.dim, self.engine = embedder.name, embedder.dim, embedder.engine
        self._embedder = embedder
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._embedder.passages(texts)

    def _recall(self, text: str) -> np.ndarray | None:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
            return hit

    def _remember(self, text: str, vector: np.ndarray) -> np.ndarray:
        vector.setflags(write=False)
        with self._lock:
            self._cache[text] = vector
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return vector

    def queries(self, texts: list[str]) -> np.ndarray:
        if len(texts) != 1:
            return self._embedder.queries(texts)
        hit = self._recall(texts[0])
        return (hit if hit is not None else self._remember(texts[0], self._embedder.queries(texts)[0]))[None, :]

    async def query(self, text: str) -> np.ndarray:
        hit = self._recall(text)
        return hit if hit is not None else self._remember(text, await self._embedder.query(text))
