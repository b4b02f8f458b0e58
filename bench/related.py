"""Benchmark related notes where the truth is known: are a section's neighbours sections of its own chapter?

    python -m bench.related --devbench ../shared/devbench [--k 5] [--index DIR]

In ../shared/devbench each post is one section of a chapter, and its `title` is the chapter's name. The
corpus is built into a temporary index (or --index names one already built from it); then each post's k
nearest other posts are found by each method of app/related.py, and the share of them from the same
chapter is reported (precision@k), beside the share a random pick would give.

Every chunk is embedded with its post's title in front (Chunk.context), and here the title is the chapter:
that alone could pull sections together. So the same figures are also computed from the chunk bodies
embedded alone, without title or heading. Nothing is tuned on this set; it only chooses between methods.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.catalog import catalog
from app.related import by_max, by_mean, post_vectors
from ingest.build import build, embed_in_batches
from ingest.embed import load_embedder
from ingest.index import open_index
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parent.parent


def _neighbours(vectors: np.ndarray, chunk_post: np.ndarray, n: int, k: int, method: str) -> list[list[int]]:
    if method == "mean":
        vecs = post_vectors(vectors, chunk_post, n)
        return [[j for j, _ in by_mean(vecs, i, k)] for i in range(n)]
    return [[j for j, _ in by_max(vectors, chunk_post, n, i, k)] for i in range(n)]


def _scores(chapters: list[str], lists: list[list[int]], k: int) -> dict[str, float]:
    """precision@k over posts whose chapter has another section; also with k capped at that chapter's size."""
    size = {c: chapters.count(c) for c in set(chapters)}
    judged = [i for i in range(len(chapters)) if size[chapters[i]] > 1]
    same = [sum(chapters[j] == chapters[i] for j in lists[i][:k]) for i in judged]
    return {
        "p@k": statistics.fmean(s / k for s in same),
        "capped": statistics.fmean(s / min(k, size[chapters[i]] - 1) for s, i in zip(same, judged)),
        "chance": statistics.fmean((size[chapters[i]] - 1) / (len(chapters) - 1) for i in judged),
        "posts": len(judged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.related", description=__doc__.split("\n")[0])
    parser.add_argument("--devbench", type=Path, default=ROOT.parent / "shared" / "devbench")
    parser.add_argument("--index", type=Path, help="an index already built from the devbench corpus")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = IngestSettings(
            corpus_dir=args.devbench / "corpus", index_dir=args.index or Path(tmp) / "indexes",
            model_dir=ROOT / "indexes" / "models",
        )
        if args.index is None:
            started = time.perf_counter()
            print(f"building {settings.corpus_dir} … ", end="", flush=True)
            build(settings)
            print(f"{time.perf_counter() - started:.0f} s")
        index = open_index(settings.index_dir)
    cat = catalog(index)
    chapters = [p.title for p in cat.posts]
    n, k = len(cat.posts), args.k
    embedder = load_embedder(settings.embedder, settings.engine_options())
    bodies = embed_in_batches(embedder, [c.text for c in index.chunks], "chunk bodies")
    print(f"\n{n} posts in {len(set(chapters))} chapters, {len(index.chunks)} chunks; engine {index.manifest.rules.embedder.engine}\n")
    print(f"| vectors | method | posts judged | precision@{k} same chapter | same, k capped at chapter size - 1 | chance |")
    print("|---|---|---|---|---|---|")
    for label, vectors in (("title + heading + text (as served)", index.vectors), ("text alone (check)", bodies)):
        for method in ("mean", "max"):
            s = _scores(chapters, _neighbours(vectors, cat.chunk_post, n, k, method), k)
            print(f"| {label} | {method} | {s['posts']} | {s['p@k']:.3f} | {s['capped']:.3f} | {s['chance']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
