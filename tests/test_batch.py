"""Questions from many threads embedded in shared batches: each gets its own vector, in order."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.batch import BatchedQueries, Batcher
from ingest.embed import Embedder


class SlowVectors:
    """A stand-in engine: a text's vector is a function of the text alone, and each call takes a while,
    so that questions pile up behind it. It records the batches it was given."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        time.sleep(0.05)
        if self.fail_on in texts:
            raise RuntimeError("engine failure")
        return np.array([[len(t), sum(map(ord, t)) % 997, hash(t) % 10_000] for t in texts], dtype=np.float32)


def test_concurrent_questions_share_batches_and_get_their_own_vectors() -> None:
    engine = SlowVectors()
    batcher = Batcher(engine, max_batch=8)
    questions = [f"question {i} {'x' * i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda q: batcher([q])[0], questions))
    batcher.close()
    for q, vector in zip(questions, results):
        assert np.array_equal(vector, engine([q])[0])
    sizes = [len(b) for b in engine.batches[:-len(questions)]]
    assert max(sizes) > 1 and max(sizes) <= 8 and sum(sizes) == len(questions)


def test_a_lone_question_does_not_wait_for_company() -> None:
    engine = SlowVectors()
    batcher = Batcher(engine)
    started = time.perf_counter()
    batcher(["alone"])
    assert time.perf_counter() - started < 0.05 + 0.5  # one engine call, no batching window
    batcher.close()
    assert engine.batches == [["alone"]]


def test_many_texts_of_one_caller_come_back_in_order_and_duplicates_are_embedded_once() -> None:
    engine = SlowVectors()
    batcher = Batcher(engine, max_batch=4)
    texts = ["b", "a", "b", "c", "a", "d", "e"]
    vectors = batcher(texts)
    batcher.close()
    assert np.array_equal(vectors, engine(texts))
    assert all(len(set(b)) == len(b) for b in engine.batches[:-1])


def test_an_engine_error_fails_only_that_batchs_questions() -> None:
    engine = SlowVectors(fail_on="bad")
    batcher = Batcher(engine, max_batch=4)
    gate = threading.Event()
    outcomes: dict[str, str] = {}

    def ask(text: str) -> None:
        gate.wait()
        try:
            batcher([text])
            outcomes[text] = "ok"
        except RuntimeError:
            outcomes[text] = "failed"

    # "first" occupies the engine; "bad" and its batch-mates queue behind it and share one batch.
    first = threading.Thread(target=ask, args=("first",))
    gate.set()
    first.start()
    time.sleep(0.02)
    rest = [threading.Thread(target=ask, args=(t,)) for t in ("bad", "mate")]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()
    later = batcher(["later"])
    batcher.close()
    failed_batch = next(b for b in engine.batches if "bad" in b)
    assert outcomes["first"] == "ok" and outcomes["bad"] == "failed"
    assert outcomes["mate"] == ("failed" if "mate" in failed_batch else "ok")
    assert later.shape == (1, 3)


def test_the_real_engine_gives_the_same_vector_alone_or_in_a_crowd(embedder: Embedder) -> None:
    questions = ["为什么需要梯度检查点?", "How does DDP sync gradients?", "随机森林和GBDT有什么区别", "什么是感受野"] * 3
    alone = np.stack([embedder.queries([q])[0] for q in questions])
    batched = BatchedQueries(embedder, max_batch=8)
    with ThreadPoolExecutor(max_workers=12) as pool:
        crowd = np.stack(list(pool.map(lambda q: batched.queries([q])[0], questions)))
    batched.close()
    # Padding changes the order of floating-point sums a little, in bf16 most of all; never the meaning.
    assert np.min(np.sum(alone * crowd, axis=1)) > 0.999


def test_awaited_questions_share_batches_without_holding_threads() -> None:
    import asyncio

    engine = SlowVectors()

    class Stub:
        name, dim, engine = "stub", 3, "test"

        def queries(self, texts: list[str]) -> np.ndarray:
            return engine(texts)

        def passages(self, texts: list[str]) -> np.ndarray:
            return engine(texts)

    batched = BatchedQueries(Stub(), max_batch=16)

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(batched.query(f"q{i}") for i in range(12)))

    vectors = asyncio.run(many())
    batched.close()
    assert all(np.array_equal(v, engine([f"q{i}"])[0]) for i, v in enumerate(vectors))
    assert len(engine.batches) - 12 <= 2  # the twelve went in one or two batches, not twelve
