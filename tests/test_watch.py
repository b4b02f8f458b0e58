"""The corpus watcher: which paths count, then a real watcher on a temporary corpus with real child ingests."""
from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from ingest import store
from ingest.index import current_version
from ingest.settings import IngestSettings
from ingest.watch import Run, child_env, describe, watch, wanted
from tests.conftest import MODELS, make_engine

POST = """---
title: 鳄梨蛋糕的烘焙温度
tags: [baking]
---

鳄梨蛋糕要在 175 度的烤箱里烤四十分钟, 烤之前必须预热烤箱十分钟。
The avocado cake bakes at 175 degrees for forty minutes, after a ten-minute preheat.
"""
# Editors' files next to a note: vim's swap file, write probe and backup, emacs's lock and autosave, a temp copy.
EDITOR_FILES = [".avocado.md.swp", "4913", "avocado.md~", ".#avocado.md", "#avocado.md#", "avocado.md.tmp"]


def test_wanted_paths(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "README").write_text("x")
    expected = {
        "note.md": True, "sub/note.markdown": True, "NOTE.MD": True, "folder": True, "moved-away": True,
        ".note.md.swp": False, "note.md~": False, ".#note.md": False, "#note.md#": False, "4913": False,
        "note.md.tmp": False, "note.md___jb_tmp___": False, ".git/objects/ab": False, "sub/.hidden/x.md": False,
        "image.png": False, "notes.txt": False, "README": False,
    }
    assert {p: wanted(tmp_path / p, tmp_path) for p in expected} == expected
    assert not wanted(tmp_path.parent / "elsewhere.md", tmp_path)


def test_the_child_gets_the_watchers_settings_and_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTES_THREADS", raising=False)
    env = child_env(IngestSettings(corpus_dir=tmp_path / "c", index_dir=tmp_path / "i", lock_timeout=2))
    assert env["NOTES_CORPUS_DIR"] == str(tmp_path / "c") and env["NOTES_INDEX_DIR"] == str(tmp_path / "i")
    assert (env["NOTES_LOCK_TIMEOUT"], env["NOTES_THREADS"]) == ("2.0", "1")
    monkeypatch.setenv("NOTES_THREADS", "2")
    assert child_env(IngestSettings())["NOTES_THREADS"] == "2"  # the user's choice wins


@pytest.fixture
def workspace(built: IngestSettings, tmp_path: Path) -> IngestSettings:
    """A copy of the built test corpus and its index, watched with the default settings."""
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.index_dir, tmp_path / "indexes")
    return IngestSettings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "indexes", model_dir=MODELS)


def until(check, seconds: float = 30.0):  # -> the first truthy value of check()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"nothing after {seconds} s")


def armed_children(corpus: Path) -> list[int]:
    """Processes of `python -m ingest --armed` started for this corpus."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"--armed" in cmd and f"NOTES_CORPUS_DIR={corpus}\0".encode() in env:
            found.append(int(pid))
    return found


def test_a_saved_post_is_answered_and_editor_files_and_halves_build_nothing(
    workspace: IngestSettings, embedder, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = workspace.corpus_dir
    engine = make_engine(workspace.index_dir, embedder)
    runs = lambda: [r.getMessage() for r in caplog.records if r.getMessage().startswith("watch: ")]  # noqa: E731
    with caplog.at_level(logging.INFO, logger="app"), TestClient(create_app(engine.settings, engine, workspace)) as client:
        until(runs)  # the ingest at start, for changes made while nobody watched: none here
        assert "(0 added, 0 updated, 0 removed" in runs()[0]
        for name in EDITOR_FILES:
            (corpus / name).write_text(POST, "utf-8")
        # A post written in two pieces, 0.3 s apart: one build, of the whole post.
        half = len(POST) // 2
        with open(corpus / "avocado.md", "w", encoding="utf-8") as f:
            f.write(POST[:half])
            f.flush()
            time.sleep(0.3)
            f.write(POST[half:])
        saved = time.monotonic()

        def answered() -> dict | None:
            body = client.post("/ask", json={"question": "鳄梨蛋糕要烤多久?"}).json()
            return body if body["found"] and body["citations"][0]["post_id"] == "avocado" else None

        body = until(answered)
        elapsed = time.monotonic() - saved
        assert "175 度" in body["answer"]
        until(lambda: len(runs()) == 2)  # the server's own reload check may have been first
        assert runs()[1].startswith("watch: avocado.md changed: 8 posts (1 added, 0 updated")
        assert client.get("/posts/avocado").json()["text"] == POST.split("---\n", 2)[2].strip()
        # Editor files alone build nothing.
        version = current_version(workspace.index_dir)
        (corpus / ".avocado.md.swp").write_text("changed", "utf-8")
        (corpus / "4914").write_text("", "utf-8")
        time.sleep(workspace.watch_debounce + 0.5)
        assert len(runs()) == 2 and current_version(workspace.index_dir) == version
    assert armed_children(corpus) == []  # the app's shutdown ended the waiting child
    print(f"saved post answered after {elapsed:.2f} s")


def test_an_ingest_error_is_reported_and_watching_goes_on(workspace: IngestSettings) -> None:
    settings = workspace.model_copy(update={"lock_timeout": 0.3})
    runs: queue.Queue[Run] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(settings,), kwargs={"on_run": runs.put, "stop": stop})
    thread.start()
    try:
        assert runs.get(timeout=60).ok
        with store.lock(settings.index_dir, 10):  # as if someone ran `python -m ingest` by hand meanwhile
            (settings.corpus_dir / "avocado.md").write_text(POST, "utf-8")
            failed = runs.get(timeout=60)
        assert not failed.ok and failed.paths == ("avocado.md",)
        assert describe(failed).startswith("avocado.md changed: ingest failed: Another ingest (pid ")
        assert describe(failed).endswith("; still watching")
        (settings.corpus_dir / "avocado.md").write_text(POST + "\n第二版。\n", "utf-8")
        done = runs.get(timeout=60)
        assert done.ok and "(1 added, 0 updated" in done.message
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and armed_children(settings.corpus_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_stops_the_watch_command_cleanly(workspace: IngestSettings, signum: int) -> None:
    env = {**os.environ, "NOTES_CORPUS_DIR": str(workspace.corpus_dir), "NOTES_INDEX_DIR": str(workspace.index_dir)}
    # Ctrl-C as a terminal sends it, even when this suite runs in the background, where the shell made SIGINT
    # ignored, and an ignored signal is inherited (and, rightly, obeyed by the watcher).
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--watch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        until(lambda: "index " in "".join(lines), 60)  # the ingest at start is done
        until(lambda: armed_children(workspace.corpus_dir))  # and the next child waits, warm
        proc.send_signal(signum)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Say what it had printed and which children were alive.
            pytest.fail(f"no exit 30 s after the signal; children {armed_children(workspace.corpus_dir)}; output: {''.join(lines)!r}")
        assert code == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    text = "".join(lines)
    assert "watching " in text and "0 added, 0 updated, 0 removed" in text and text.rstrip().endswith("stopped watching")
    assert "Traceback" not in text and armed_children(workspace.corpus_dir) == []
