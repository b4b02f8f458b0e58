"""bench.fit, the refit of fusion and abstention: its served rows are what bench.eval measures, and the grid
leaves the served policy as it found it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import fuse
from bench import eval as bench_eval
from bench import fit
from tests.conftest import DATA, TEST_CORPUS


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    """The project's questions about the test corpus, split in two, and two it should refuse."""
    known = {p.stem for p in TEST_CORPUS.glob("*.md")}
    rows = [json.loads(line) for line in (DATA / "eval_questions.jsonl").read_text("utf-8").splitlines()]
    mine = [r for r in rows if set(r["relevant"]) & known]
    out = [{"q": r["question"], "gold": r["relevant"], "lang": r["lang"], "split": ("tune", "heldout")[i % 2]}
           for i, r in enumerate(mine)]
    out += [{"q": q, "gold": [], "lang": "zh", "split": s} for q, s in (("红烧肉怎么做", "tune"), ("明天会下雨吗", "heldout"))]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in out), "utf-8")
    return path


def test_the_served_rows_are_what_the_evaluation_measures(
    questions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = (fuse.CJK, fuse.LATIN)
    cache = ["--cache", str(tmp_path / "cache")]
    assert fit.main([str(questions), "--corpus", str(TEST_CORPUS), *cache]) == 0
    assert (fuse.CJK, fuse.LATIN) == served
    out = capsys.readouterr().out
    tables = out.split("### ")[1:]
    assert [t.splitlines()[0] for t in tables] == ["zh questions, policy CJK", "en questions, policy LATIN",
                                                  "Refused, from the retrieval evidence"]
    rows = [line.split(" | ") for line in tables[0].splitlines() if line.startswith("| hybrid")]
    assert len(rows) == len(fit.DENSE) * len(fit.BM25)
    (tune, heldout), = [(float(r[3]), float(r[4].rstrip(" |"))) for r in rows if "(served)" in r[0]]
    assert len([line for line in tables[2].splitlines() if line.startswith("| ") and line[2].isdigit()]) == 25

    assert bench_eval.main([str(questions), "--corpus", str(TEST_CORPUS), "--methods", "hybrid", *cache]) == 0
    measured: dict[tuple[str, ...], float] = {}
    for line in capsys.readouterr().out.splitlines():  # the first table: split, slice, n, hybrid MRR@10, R@1
        key = tuple(c.strip() for c in line.split("|")[1:3])
        if key in (("tune", "zh"), ("heldout", "zh")) and key not in measured:
            measured[key] = float(line.split("|")[4])
    assert (tune, heldout) == (round(measured[("tune", "zh")], 3), round(measured[("heldout", "zh")], 3))
