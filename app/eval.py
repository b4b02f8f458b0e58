"""Evaluate retrieval and answers on a labelled question set: questions -> metrics table.

    python -m app.eval [--questions tests/data/eval_questions.jsonl] [--index indexes]

Prints, per language slice, R@1, R@5 and MRR@10 over distinct posts for bm25-only, dense-only,
RRF and hybrid retrieval side by side, then the abstention rate and the rate at which the first
citation of an answer is a relevant post.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from app.answer import answer
from app.fuse import distinct_posts_first
from app.retrieve import METHODS, Retriever
from app.settings import Settings
from ingest.embed import load_embedder
from ingest.index import open_index

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "eval_questions.jsonl"
SLICES = ("zh", "en", "mixed", "all")


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def post_ranking(retriever: Retriever, question: str, method: str) -> list[str]:
    r = retriever.search(question, k=30, method=method)
    post_of = [c.post_id for c in retriever.index.chunks]
    return [post_of[h.chunk] for h in distinct_posts_first(r.hits, post_of)]


def retrieval_metrics(retriever: Retriever, questions: list[dict], method: str) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for q in questions:
        if q["lang"] == "off":
            continue
        posts = list(dict.fromkeys(post_ranking(retriever, q["question"], method)))
        relevant = set(q["relevant"])
        rank = next((i for i, p in enumerate(posts[:10], start=1) if p in relevant), None)
        for s in (q["lang"], "all"):
            sums[s]["n"] += 1
            sums[s]["R@1"] += rank == 1
            sums[s]["R@5"] += rank is not None and rank <= 5
            sums[s]["MRR@10"] += 1 / rank if rank else 0.0
    return {s: {m: v / d["n"] for m, v in d.items() if m != "n"} | {"n": d["n"]} for s, d in sums.items()}


def answer_metrics(retriever: Retriever, questions: list[dict]) -> dict[str, dict[str, float]]:
    """Per slice: the share of questions answered `found: false`, and of first citations that are relevant."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for q in questions:
        a = answer(retriever, q["question"], top_k=5)
        first_ok = bool(a.citations) and a.citations[0].post_id in set(q["relevant"])
        for s in {q["lang"], "all" if q["lang"] != "off" else "off"}:
            out[s]["n"] += 1
            out[s]["abstained"] += not a.found
            out[s]["first citation relevant"] += first_ok
    return {s: {m: (v / d["n"] if m != "n" else v) for m, v in d.items()} for s, d in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval", description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--index", type=Path)
    args = parser.parse_args(argv)
    settings = Settings(**({"index_dir": args.index} if args.index else {}))
    retriever = Retriever(open_index(settings.index_dir, settings.embedder), load_embedder(settings.embedder, settings.engine_options()))
    questions = load_questions(args.questions)
    print(f"{len(questions)} questions from {args.questions}\n")
    print("| slice | n | method | R@1 | R@5 | MRR@10 |\n|---|---|---|---|---|---|")
    for method in METHODS:
        for s, m in sorted(retrieval_metrics(retriever, questions, method).items(), key=lambda x: SLICES.index(x[0])):
            print(f"| {s} | {m['n']:.0f} | {method} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['MRR@10']:.3f} |")
    print("\n| slice | n | abstained | first citation relevant |\n|---|---|---|---|")
    for s, m in sorted(answer_metrics(retriever, questions).items()):
        print(f"| {s} | {m['n']:.0f} | {m['abstained']:.3f} | {m['first citation relevant']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
