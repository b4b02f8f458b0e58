"""Refit the fusion weights and the abstention bar for the served model: (corpus, question files) -> tables.

    python -m bench.fit --corpus ../shared/devbench/corpus ../shared/devbench/questions_*.jsonl

Builds the corpus once as `bench.eval` does (same embedding cache), then prints:
- for each language's policy (app/fuse.py), hybrid MRR@10 over a grid of (dense, bm25) weights, the other
  language's policy left as served, with dense and BM25 alone beside them;
- the share of questions refused over a grid of (coverage weight, probe quantile) (app/abstain.py), from the
  retrieval evidence alone, as `Retrieval.covered` decides it.
Choose on the `tune` rows; the `heldout` column is printed to be reported, not to choose by. Write the
choice into app/fuse.py and app/abstain.py, then confirm it with `python -m bench.eval`.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
from pathlib import Path

from app import abstain, fuse
from app.retrieve import Retriever
from bench import metrics
from bench.cache import EmbeddingCache
from bench.eval import post_ranking
from bench.questions import Question, load
from ingest.build import build
from ingest.embed import load_embedder
from ingest.index import open_index
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ("tune", "heldout")
DENSE = (0.6, 0.7, 0.8, 0.9, 1.0)
BM25 = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
WEIGHTS = (1.0, 1.5, 2.0, 2.5, 3.0)
QUANTILES = (84.0, 86.0, 88.0, 90.0, 92.0)


def mrr(retriever: Retriever, questions: list[Question], method: str = "hybrid") -> dict[str, float]:
    scores = metrics.retrieval([post_ranking(retriever, q.text, method) for q in questions], questions)
    return {split: round(scores[(split, questions[0].lang)]["MRR@10"], 3) for split in SPLITS}


def fusion_table(retriever: Retriever, questions: list[Question], lang: str) -> str:
    """Hybrid MRR@10 of one language's questions over the grid of its policy."""
    name = "CJK" if lang == "zh" else "LATIN"
    served = getattr(fuse, name)
    mine = [q for q in questions if q.lang == lang and not q.off_topic]
    rows = [f"| {m} alone | | | {' | '.join(str(v) for v in mrr(retriever, mine, m).values())} |" for m in ("dense", "bm25")]
    try:
        for dense, bm25 in itertools.product(DENSE, BM25):
            setattr(fuse, name, dataclasses.replace(served, dense=dense, bm25=bm25))
            mark = " (served)" if (dense, bm25) == (served.dense, served.bm25) else ""
            rows.append(f"| hybrid{mark} | {dense} | {bm25} | {' | '.join(str(v) for v in mrr(retriever, mine).values())} |")
    finally:
        setattr(fuse, name, served)
    head = f"### {lang} questions, policy {name}\n\n| | dense | bm25 | tune MRR@10 | heldout MRR@10 |\n|---|---|---|---|---|"
    return "\n".join([head, *rows])


def abstention_table(retriever: Retriever, questions: list[Question]) -> str:
    """Refusals per split, on-topic and off-topic, over the grid of (coverage weight, probe quantile)."""
    probe = retriever.probe_evidence()
    asked = [(q, retriever.search(q.text, 5)) for q in questions]
    rows = []
    for weight, quantile in itertools.product(WEIGHTS, QUANTILES):
        bar = abstain.calibrate([p[0] for p in probe], [p[1] for p in probe], quantile, weight)
        cells = []
        for split, off in itertools.product(SPLITS, (False, True)):
            mine = [(q, r) for q, r in asked if q.split == split and q.off_topic == off]
            refused = sum(not (r.hits and abstain.covered(r.lift, r.coverage, bar, weight)) for _, r in mine)
            cells.append(f"{refused}/{len(mine)}")
        served = (weight, quantile) == (abstain.COVERAGE_WEIGHT, abstain.PROBE_QUANTILE)
        rows.append(f"| {weight}{' (served)' if served else ''} | {quantile:g} | {' | '.join(cells)} |")
    head = ("### Refused, from the retrieval evidence\n\n| coverage weight | probe quantile | tune on-topic | "
            "tune off-topic | heldout on-topic | heldout off-topic |\n|---|---|---|---|---|---|")
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fit", description=__doc__.split("\n")[0])
    parser.add_argument("questions", nargs="+", type=Path, help="question files with tune and heldout splits")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache", help="where embeddings are remembered")
    args = parser.parse_args(argv)
    questions = [q for path in args.questions for q in load(path)]
    settings = IngestSettings(corpus_dir=args.corpus)
    embedder = EmbeddingCache(load_embedder(settings.embedder, settings.engine_options()), args.cache / "embeddings")
    with tempfile.TemporaryDirectory(prefix="notes-fit-") as tmp:
        build(settings.model_copy(update={"index_dir": Path(tmp)}), full=True, embedder=embedder)
        retriever = Retriever(open_index(Path(tmp), embedder.name), embedder)
        print(f"## Refit for {embedder.name} on {args.corpus}\n")
        for lang in ("zh", "en"):
            print(fusion_table(retriever, questions, lang) + "\n", flush=True)
        print(abstention_table(retriever, questions))
        embedder.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
