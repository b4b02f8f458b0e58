"""The wheel, installed in a fresh virtual environment outside the source tree, ingests and answers."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx

from tests.conftest import MODELS, TEST_CORPUS, free_port

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_wheel_ingests_and_answers(tmp_path: Path) -> None:
    # Build from a copy, so that the build leaves nothing in the tree, and offline: no build isolation.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("app", "ingest"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("notes_qa-*.whl")

    # A fresh environment with only the wheel; the third-party packages come from ours through a .pth
    # file, which does not run our editable install's finder (a .pth-added folder's .pth files are not read).
    fresh = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", fresh, cwd=tmp_path)
    python = fresh / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel, cwd=tmp_path)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", "utf-8")
    where = run(python, "-c", "import app, ingest; print(app.__file__); print(ingest.__file__)", cwd=tmp_path)
    assert all(Path(line).is_relative_to(site) for line in where.split()), where

    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(TEST_CORPUS, work / "corpus", ignore=shutil.ignore_patterns("broken.md", "empty.md"))
    # The converted model is shared with the other tests rather than made again for this one.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NOTES_MODEL_DIR": str(MODELS)}
    assert "index " in run(python, "-m", "ingest", cwd=work, env=env)
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "app", "--port", str(port)], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        # An English question needs the glossary (ingest/data/glossary.tsv) to reach the Chinese note.
        r = httpx.post(f"{url}/ask", json={"question": "How does DDP synchronise gradients across GPUs?"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["found"] and r.json()["citations"][0]["post_id"] == "quick-start-ddp-pytorch-f3f3c6"
        for path in ("/", "/docs", "/docs/assets/swagger-ui-bundle.js", "/static/js/main.js"):
            assert httpx.get(url + path, timeout=10).status_code == 200, path
    finally:
        server.terminate()
        server.wait(timeout=30)
