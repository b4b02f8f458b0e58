"""Evaluate retrieval and answers on labelled questions: (corpus or index, question files) -> Markdown tables.

    python -m bench.eval                                   # the seed corpus and tests/data/eval_questions.jsonl
    python -m bench.eval --corpus ../shared/devbench/corpus ../shared/devbench/questions_*.jsonl
    python -m bench.eval --index indexes QUESTIONS...      # an index that is already built
    python -m bench.eval --index indexes --feedback        # and the questions labelled by 👍/👎 in the page

With `--corpus`, the real `ingest.build.build` writes a temporary index; every embedding goes through a
disk cache (`.cache/embeddings/`, keyed by embedder, engine and text), so only a text never seen before is
embedded. The index and the questions are embedded as served (ONNX Runtime, ingest/embed.py).
Question files may be in the project's format or the benchmark's; `--feedback [PATH]` (default
indexes/feedback.jsonl; give it after the question files) adds the owner's own questions from feedback, as
the split "feedback" (bench/questions.py says how). Prints, per split and language, R@1, R@5 and MRR@10
over distinct posts for each retrieval method; then the share of questions refused (off-topic ones should be)
and the share of answers whose first citation is a relevant post; then the found answers a reader would
stumble on (bench/defects.py: Markdown source, a dangling lead-in, a link-only sentence, a list fragment).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from app.answer import Answer, answer
from app.fuse import distinct_posts_first
from app.retrieve import METHODS, Retriever
from app.settings import Settings
from bench import metrics
from bench.cache import EmbeddingCache
from bench.defects import KINDS, answer_defects, link_texts
from bench.questions import FEEDBACK, OFF, Question, load, load_feedback
from ingest.build import build
from ingest.embed import load_embedder
from ingest.index import open_index
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = ROOT / "tests" / "data" / "eval_questions.jsonl"
LANGS = ("zh", "en", "mixed", metrics.ALL, OFF)
SPLITS = ("tune", "heldout", "all", FEEDBACK)


def post_ranking(retriever: Retriever, question: str, method: str) -> list[str]:
    """Distinct posts in the order `/search` shows them."""
    post_of = [c.post_id for c in retriever.index.chunks]
    hits = distinct_posts_first(retriever.search(question, k=30, method=method).hits, post_of)
    return list(dict.fromkeys(post_of[h.chunk] for h in hits))


def _order(key: tuple[str, str]) -> tuple[int, int]:
    split, lang = key
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), LANGS.index(lang) if lang in LANGS else len(LANGS))


def _defects(retriever: Retriever, a: Answer) -> set[str]:
    posts = retriever.index.posts
    return answer_defects(a.answer, [t for c in a.citations for t in link_texts(posts[c.post_id].text)])


def defect_table(found: list[tuple[Question, Answer, set[str]]], show: int) -> str:
    """Found answers with each kind of defect, per split and language, and the first `show` examples."""
    rows: dict[tuple[str, str], list[set[str]]] = {}
    for q, _, kinds in found:
        for key in {(q.split, q.lang), (q.split, metrics.ALL), ("all", metrics.ALL)}:
            rows.setdefault(key, []).append(kinds)
    lines = ["| split | slice | found | with a defect | " + " | ".join(KINDS) + " |", "|---|---|---|---|" + "---|" * len(KINDS)]
    for key in sorted(rows, key=_order):
        found_kinds = rows[key]
        bad = sum(bool(k) for k in found_kinds)
        counts = " | ".join(str(sum(kind in k for k in found_kinds)) for kind in KINDS)
        lines.append(f"| {key[0]} | {key[1]} | {len(found_kinds)} | {bad} ({bad / len(found_kinds):.1%}) | {counts} |")
    examples = [f"- {q.text} -> {', '.join(sorted(k))}: {a.answer}" for q, a, k in found if k][:show]
    return "\n".join(lines + ([""] + examples if examples else []))


def report(retriever: Retriever, questions: list[Question], methods: tuple[str, ...], show: int = 0) -> str:
    """The Markdown tables for one index and one set of questions."""
    on_topic = [q for q in questions if not q.off_topic]
    by_method = {m: metrics.retrieval([post_ranking(retriever, q.text, m) for q in on_topic], on_topic) for m in methods}
    results = []
    found: list[tuple[Question, Answer, set[str]]] = []
    for q in questions:
        a = answer(retriever, q.text, top_k=5)
        results.append(metrics.Answered(a.found, a.citations[0].post_id if a.citations else None))
        if a.found:
            found.append((q, a, _defects(retriever, a)))
    answered = metrics.answers(results, questions)
    keys = sorted(by_method[methods[0]], key=_order)
    lines = ["| split | slice | n | " + " | ".join(f"{m} MRR@10 | {m} R@1" for m in methods) + " |"]
    lines.append("|---|---|---|" + "---|---|" * len(methods))
    for key in keys:
        cells = " | ".join(f"{by_method[m][key]['MRR@10']:.3f} | {by_method[m][key]['R@1']:.3f}" for m in methods)
        lines.append(f"| {key[0]} | {key[1]} | {by_method[methods[0]][key]['n']:.0f} | {cells} |")
    lines += ["", "| split | slice | method | n | R@1 | R@5 | MRR@10 |", "|---|---|---|---|---|---|---|"]
    for key in keys:
        for m in methods:
            v = by_method[m][key]
            lines.append(f"| {key[0]} | {key[1]} | {m} | {v['n']:.0f} | {v['R@1']:.3f} | {v['R@5']:.3f} | {v['MRR@10']:.3f} |")
    lines += ["", "| split | slice | n | refused | first citation relevant |", "|---|---|---|---|---|"]
    for key in sorted(answered, key=_order):
        v = answered[key]
        first = "" if key[1] == OFF else f"{v['first citation relevant']:.3f}"
        lines.append(f"| {key[0]} | {key[1]} | {v['n']:.0f} | {v['refused']:.3f} ({v['refused'] * v['n']:.0f}) | {first} |")
    return "\n".join(lines) + "\n\n" + defect_table(found, show)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.split("\n")[0])
    parser.add_argument("questions", nargs="*", type=Path, default=[DEFAULT_QUESTIONS], help="question files (JSON lines)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--corpus", type=Path, help="build a temporary index of this corpus (default: corpus/)")
    where.add_argument("--index", type=Path, help="evaluate this already built index instead")
    parser.add_argument("--feedback", type=Path, nargs="?", const=Settings().feedback_path, metavar="PATH",
                        help="also the questions labelled by feedback (default PATH: indexes/feedback.jsonl)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache", help="where embeddings are remembered")
    parser.add_argument("--show-defects", type=int, default=0, metavar="N", help="print the first N defective answers")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    args = parser.parse_args(argv)
    methods = tuple(m for m in args.methods.split(",") if m)
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    questions = [q for path in args.questions for q in load(path)]
    if args.feedback:
        questions += load_feedback(args.feedback)
    settings = IngestSettings(**({"corpus_dir": args.corpus} if args.corpus else {}))
    embedder = EmbeddingCache(load_embedder(settings.embedder, settings.engine_options()), args.cache / "embeddings")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="notes-eval-") as tmp:
        if args.index:
            index = open_index(args.index, embedder.name)
            source = f"index {args.index} (built by {index.manifest.rules.embedder.engine})"
        else:
            target = settings.model_copy(update={"index_dir": Path(tmp)})
            summary = build(target, full=True, embedder=embedder)
            index = open_index(Path(tmp), embedder.name)
            source = f"corpus {settings.corpus_dir} ({summary.posts} posts, {summary.chunks} chunks, {embedder.misses} texts embedded by {embedder.engine})"
        table = report(Retriever(index, embedder), questions, methods, args.show_defects)
        embedder.save()
    names = ", ".join(str(p) for p in args.questions + ([args.feedback] if args.feedback else []))
    print(f"{len(questions)} questions from {names}, embedded by {embedder.engine}; {source}; {time.perf_counter() - started:.0f} s\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
