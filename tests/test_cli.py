"""`python -m app ask` and `search` as subprocesses: exit codes, --json against the HTTP schema, text with and
without a terminal. The runs that load the model start together in one fixture, to share the wait."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.schemas import AskResponse, SearchResponse
from app.terminal import width
from ingest.settings import IngestSettings

GC = "gradient-checkpointing-7d01ea"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Result:
    code: int
    out: str
    err: str


def start(args: list[str], index: Path, tty: bool = False, **env: str) -> tuple[subprocess.Popen, int | None]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    # One model thread each: seven processes of two threads on two cores wait for each other far longer.
    environ.update({"NOTES_INDEX_DIR": str(index), "COLUMNS": "80", "TERM": "xterm", **env})
    if not tty:
        return subprocess.Popen([sys.executable, "-m", "app", *args], env=environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True), None
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "app", *args], env=environ, stdout=follower,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    os.close(follower)
    return proc, leader


def finish(proc: subprocess.Popen, leader: int | None) -> Result:
    if leader is None:
        out, err = proc.communicate(timeout=120)
        return Result(proc.returncode, out, err)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    return Result(proc.returncode, b"".join(chunks).decode("utf-8").replace("\r\n", "\n"), err)


RUNS = {
    "answer": (["ask", "为什么需要梯度检查点?"], {}),
    "answer-json": (["ask", "为什么需要梯度检查点?", "--top-k", "3", "--json"], {}),
    "off-topic-json": (["ask", "红烧肉怎么做?", "--json"], {}),
    "filtered-away": (["ask", "为什么需要梯度检查点?", "--tag", "trees"], {}),
    "search": (["search", "决策树", "-k", "3", "--tag", "ENSEMBLE", "--tag", "memory"], {}),
    "search-json": (["search", "决策树", "-k", "3", "--json", "--since", "2025-01-01"], {}),
}


@pytest.fixture(scope="module")
def runs(built: IngestSettings) -> dict[str, Result]:
    started = {name: start(args, built.index_dir, **env) for name, (args, env) in RUNS.items()}
    started["tty"] = start(["ask", "为什么需要梯度检查点?"], built.index_dir, tty=True)
    return {name: finish(*p) for name, p in started.items()}


def test_an_answer_with_numbered_citations_in_plain_text(runs: dict[str, Result]) -> None:
    r = runs["answer"]
    assert r.code == 0, r.err
    answer, citation = r.out.split("\n\n")[:2]
    assert answer.startswith("梯度检查点(Gradient Checkpointing)") and answer.endswith("[1]")
    assert citation.startswith(f"[1] 梯度检查点(Gradient Checkpointing) 大模型的参数量巨大 · {GC} · 2025-06-01\n    ")
    assert not ANSI.search(r.out)  # no terminal, no colour


def test_json_is_the_http_response(runs: dict[str, Result], client: TestClient) -> None:
    # Scores may differ in the last digits: the command and the test client each load the model.
    r = runs["answer-json"]
    assert r.code == 0, r.err
    cli = AskResponse.model_validate_json(r.out).model_dump(exclude={"timings_ms"})
    http = AskResponse.model_validate(client.post("/ask", json={"question": "为什么需要梯度检查点?", "top_k": 3}).json())
    http = http.model_dump(exclude={"timings_ms"})
    for body in (cli, http):
        for c in body["citations"]:
            c.pop("score")
    assert cli == http and cli["found"] is True
    search = runs["search-json"]
    assert search.code == 0, search.err
    ours = SearchResponse.model_validate_json(search.out).model_dump()
    theirs = client.get("/search", params={"q": "决策树", "k": 3, "since": "2025-01-01"}).json()
    assert [x["chunk_id"] for x in ours["results"]] == [x["chunk_id"] for x in theirs["results"]]
    assert ours["query"] == theirs["query"] == "决策树" and len(ours["results"]) == 3


def test_not_covered_exits_3(runs: dict[str, Result]) -> None:
    r = runs["off-topic-json"]
    assert r.code == 3, r.err
    body = AskResponse.model_validate_json(r.out)
    assert (body.found, body.answer, body.citations) == (False, "我的笔记里没有涉及这个问题。", [])
    filtered = runs["filtered-away"]
    assert (filtered.code, filtered.out) == (3, "我的笔记里没有涉及这个问题。\n")


def test_search_lists_passages_in_aligned_columns(runs: dict[str, Result]) -> None:
    r = runs["search"]
    assert r.code == 0, r.err
    rows = [line for line in r.out.splitlines() if not line.startswith("    ")]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    ids = [row.rsplit(" ", 1)[1] for row in rows]
    assert set(ids) == {"gbdt-gradient-boosting-decision-1c038d", "random-forests-cart-443cef", GC}
    # The post ids start in the same terminal column although the titles mix Chinese and English.
    assert len({width(row) - width(pid) for row, pid in zip(rows, ids)}) == 1


def test_on_a_terminal_text_is_coloured_and_wrapped(runs: dict[str, Result]) -> None:
    r = runs["tty"]
    assert r.code == 0, r.err
    assert ANSI.search(r.out) and "[1]" in r.out
    assert all(width(ANSI.sub("", line)) <= 80 for line in r.out.splitlines())


def run_now(args: list[str], index: Path) -> Result:
    return finish(*start(args, index))


def test_usage_errors_exit_2_before_loading_anything(tmp_path: Path) -> None:
    for args in (["ask"], ["ask", "   "], ["ask", "q", "--top-k", "0"], ["ask", "q", "--since", "2026-13-01"],
                 ["search", "q", "-k", "51"], ["ask", "q", "--since", "2026-02-01", "--until", "2026-01-01"], ["nope"]):
        r = run_now(args, tmp_path)
        assert r.code == 2 and "usage: python -m app" in r.err, args


def test_no_index_exits_1_and_says_what_to_run(tmp_path: Path) -> None:
    for command in ("ask", "search"):
        r = run_now([command, "为什么需要梯度检查点?"], tmp_path / "none")
        assert (r.code, r.out) == (1, "") and r.err == f"error: No index in {tmp_path / 'none'}/; run `python -m ingest` first.\n"
