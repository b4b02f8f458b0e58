"""POST /feedback and the feedback file: validation, concurrent writers, a writer killed mid-line, the
conversion into labelled questions, and export and delete from the terminal."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app import cli, feedback
from app.__main__ import main
from app.main import create_app
from app.settings import Settings
from bench.questions import FEEDBACK, OFF, Question, from_feedback, load_feedback
from tests.conftest import DATA, make_engine

ROOT = Path(__file__).resolve().parents[1]
UP = {
    "question": "为什么需要梯度检查点?",
    "answer": "梯度检查点……[1]",
    "citations": [{"n": 1, "post_id": "gradient-checkpointing-7d01ea", "title": "梯度检查点"}],
    "verdict": "up",
}


@pytest.fixture
def fed(built, embedder, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """The app writing feedback to a file of its own."""
    path = tmp_path / "fb" / "feedback.jsonl"
    engine = make_engine(built.index_dir, embedder, feedback_file=path)
    with TestClient(create_app(engine.settings, engine)) as c:
        yield c, path


def test_a_verdict_is_stored_with_an_id_a_time_and_the_build(fed) -> None:
    client, path = fed
    r = client.post("/feedback", json={**UP, "comment": "  good  "})
    assert r.status_code == 201
    [rec] = feedback.read(path)
    assert rec["id"] == r.json()["id"] and len(rec["id"]) == 12
    assert rec["index_version"] == client.get("/healthz").json()["index_version"]
    assert rec["time"].endswith("+00:00")
    assert {k: rec[k] for k in UP} == UP and rec["comment"] == "  good  "
    assert "reason" not in rec and "citation" not in rec
    down = {**UP, "verdict": "down", "reason": "wrong_citation", "citation": 1}
    assert client.post("/feedback", json=down).status_code == 201
    assert [(r["verdict"], r.get("citation")) for r in feedback.read(path)] == [("up", None), ("down", 1)]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "change",
    [
        {"verdict": "meh"},
        {"verdict": None},
        {"question": "   "},
        {"question": "x" * 2001},
        {"answer": 5},
        {"citations": [{"n": 0, "post_id": "a"}]},
        {"question": "\x00\x01\x02"},
        {"citations": [{"n": i, "post_id": "a"} for i in range(1, 22)]},
        {"reason": "not_covered"},  # a reason with 👍
        {"verdict": "down", "reason": "because"},
        {"verdict": "down", "reason": "wrong_citation"},  # which one?
        {"verdict": "down", "reason": "wrong_citation", "citation": 2},  # not among the citations
        {"verdict": "down", "citation": 1},  # a citation without the reason
        {"comment": "x" * 2001},
        {"sneaky": 1},
    ],
)
def test_a_bad_body_is_a_422_and_stores_nothing(fed, change: dict) -> None:
    client, path = fed
    body = {k: v for k, v in {**UP, **change}.items() if v is not None}
    r = client.post("/feedback", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert not path.exists()


def test_the_citations_of_an_ask_response_are_accepted_as_they_are(fed) -> None:
    client, path = fed
    asked = client.post("/ask", json={"question": UP["question"]}).json()
    assert {"url", "snippet", "score", "date"} <= set(asked["citations"][0])
    body = {"question": UP["question"], "answer": asked["answer"], "citations": asked["citations"], "verdict": "up"}
    assert client.post("/feedback", json=body).status_code == 201
    [rec] = feedback.read(path)
    assert rec["citations"] == [{k: c[k] for k in ("n", "post_id", "title")} for c in asked["citations"]]


def test_bodies_that_are_not_json_or_too_large_are_4xx(fed) -> None:
    client, path = fed
    assert client.post("/feedback", content=b'{"question"', headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/feedback", content=json.dumps(UP).encode(), headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/feedback", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 422
    r = client.post("/feedback", json={**UP, "answer": "长" * 30_000})  # 90 KB of UTF-8, over the 64 KB limit
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert not path.exists()


def test_feedback_needs_the_api_key_when_one_is_set(built, embedder, tmp_path: Path) -> None:
    engine = make_engine(built.index_dir, embedder, api_key="k3y", feedback_file=tmp_path / "f.jsonl")
    with TestClient(create_app(engine.settings, engine)) as c:
        assert c.post("/feedback", json=UP).status_code == 401
        assert c.post("/feedback", json=UP, headers={"Authorization": "Bearer k3y"}).status_code == 201


def test_posts_from_16_threads_never_interleave(built, server_factory, tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    server = server_factory(built.index_dir, feedback_file=path)
    per_thread = 6
    failures: list[str] = []

    def post(t: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(per_thread):
                # Long answers, so that a line written in pieces would show.
                body = {**UP, "question": f"q{t}-{i}", "answer": f"{t:02d}" * 9_000}
                r = http.post("/feedback", json=body)
                if r.status_code != 201:
                    failures.append(r.text)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 16 * per_thread + 1
    records = [json.loads(line) for line in lines[:-1]]  # every line parses on its own
    assert sorted(r["question"] for r in records) == sorted(f"q{t}-{i}" for t in range(16) for i in range(per_thread))
    assert all(r["answer"] == r["question"][1:].split("-")[0].zfill(2) * 9_000 for r in records)
    assert len({r["id"] for r in records}) == len(records)


WRITER = """
import sys
from pathlib import Path
from app import feedback
path = Path(sys.argv[1])
for i in range(1_000_000):
    feedback.append(path, {"id": str(i), "question": "q%d" % i, "answer": "答" * 200_000, "verdict": "up"})
    print(i + 1, flush=True)
"""


def test_a_writer_killed_mid_write_loses_at_most_the_line_it_was_writing(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    done = 0
    for line in child.stdout:
        done = int(line)
        if done >= 20:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = max([done, *(int(x) for x in child.stdout.read().split())])  # what it reported before dying
    records = feedback.read(path)
    assert done <= len(records) <= done + 1
    assert [r["id"] for r in records] == [str(i) for i in range(len(records))]
    lines = path.read_bytes().split(b"\n")
    assert all(json.loads(line) for line in lines[: len(records)])  # only a torn last line may not parse
    # The next writer starts a fresh line, so a torn piece never swallows a good record.
    with open(path, "ab") as f:
        f.write(b'{"id": "torn", "question": "half a li')
    feedback.append(path, {"id": "after", "question": "q", "verdict": "down"})
    assert [r["id"] for r in feedback.read(path)] == [str(i) for i in range(len(records))] + ["after"]


def test_feedback_becomes_labelled_questions_exactly() -> None:
    records = feedback.read(DATA / "feedback.jsonl")
    assert [r["id"] for r in records] == [f"a{i}" for i in range(1, 10)]  # the torn last line is skipped
    assert from_feedback(records) == [
        Question("为什么需要梯度检查点?", frozenset({"gradient-checkpointing-7d01ea"}), "zh", FEEDBACK),
        Question("红烧肉怎么做?", frozenset(), OFF, FEEDBACK),
        Question("How does DDP sync gradients?", frozenset({"quick-start-ddp-pytorch-f3f3c6"}), "en", FEEDBACK),
        Question("GBDT 和随机森林有什么不同?", frozenset({"random-forests-cart-443cef"}), "mixed", FEEDBACK),
    ]
    assert load_feedback(DATA / "feedback.jsonl") == from_feedback(records)


def test_export_and_delete_from_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "feedback.jsonl"
    for i in range(3):
        feedback.append(path, feedback.record({**UP, "question": f"q{i}"}, "v1"))
    ids = [r["id"] for r in feedback.read(path)]
    assert main(["feedback", "--file", str(path), "export"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert exported == feedback.read(path)
    assert main(["feedback", "--file", str(path), "delete", ids[1]]) == 0
    assert capsys.readouterr().out == f"deleted 1 feedback record from {path}\n"
    assert [r["question"] for r in feedback.read(path)] == ["q0", "q2"]
    assert main(["feedback", "--file", str(path), "delete", "nosuchid"]) == 1
    assert "no feedback record with id nosuchid" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["feedback", "--file", str(path), "delete"])
    assert exit_.value.code == 2
    assert cli.feedback_delete(Settings(feedback_file=path), None, io.StringIO()) == 0
    assert path.read_bytes() == b"" and feedback.read(path) == []
    feedback.append(path, {"id": "new"})  # writers carry on after a delete
    assert feedback.read(path) == [{"id": "new"}]


def test_no_file_means_no_feedback(tmp_path: Path) -> None:
    assert feedback.read(tmp_path / "none.jsonl") == []
    assert feedback.delete(tmp_path / "none.jsonl") == 0
    assert os.listdir(tmp_path) == []


def test_the_evaluation_command_evaluates_feedback_beside_the_other_sets(
    built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import eval as bench_eval

    none = tmp_path / "none.jsonl"
    none.write_text("", "utf-8")
    argv = [str(none), "--index", str(built.index_dir), "--methods", "hybrid", "--cache", str(tmp_path / "cache")]
    assert bench_eval.main([*argv, "--feedback", str(DATA / "feedback.jsonl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"4 questions from {none}, {DATA / 'feedback.jsonl'}, embedded by ")
    rows = [line.split(" | ")[:3] for line in out.splitlines() if line.startswith("| feedback |")]
    retrieval = [["| feedback", slice_, "1" if slice_ != "all" else "3"] for slice_ in ("zh", "en", "mixed", "all")]
    assert rows[:4] == retrieval  # the MRR table, then the per-method table, then refusals with "off"
    assert ["| feedback", "off", "1"] in rows and ["| feedback", "off", "1"] not in rows[:8]
