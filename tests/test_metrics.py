"""GET /metrics: the Prometheus text parses, counters move with requests, labels never carry request text,
and the endpoint is served only where it should be."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from ingest import store
from tests.conftest import free_port, make_engine
from tests.test_reload import copy_build

QUESTION = "为什么需要梯度检查点? zq-marker-7781"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}; parsing it is the format check."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def index_dir(built, tmp_path: Path) -> Path:
    shutil.copytree(built.index_dir, tmp_path / "indexes")
    return tmp_path / "indexes"


@pytest.fixture
def client(index_dir: Path, embedder) -> Iterator[TestClient]:
    engine = make_engine(index_dir, embedder)
    with TestClient(create_app(engine.settings, engine)) as c:
        yield c


def test_requests_answers_and_stages_are_counted(client: TestClient) -> None:
    before = scrape(client)
    assert client.post("/ask", json={"question": QUESTION}).json()["found"] is True
    assert client.post("/ask", json={"question": "红烧肉怎么做?"}).json()["found"] is False
    assert client.get("/posts/no-such-post-zq").status_code == 404
    assert client.post("/ask", json={"question": ""}).status_code == 422
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("notes_http_requests_total", route="/ask", method="POST", status="200") == 2
    assert moved("notes_http_requests_total", route="/ask", method="POST", status="422") == 1
    assert moved("notes_http_requests_total", route="/posts/{post_id}", method="GET", status="404") == 1
    assert moved("notes_http_requests_total", route="/metrics", method="GET", status="200") == 1  # the first scrape
    assert moved("notes_http_request_duration_seconds_count", route="/ask") == 3
    assert moved("notes_answers_total", outcome="found") == 1
    assert moved("notes_answers_total", outcome="abstained") == 1
    for stage in ("segment", "embed", "search", "fuse", "answer"):
        assert moved("notes_stage_duration_seconds_count", stage=stage) == 2, stage
    assert moved("notes_stage_duration_seconds_count", stage="llm") == 0


def test_the_served_index_is_reported(client: TestClient) -> None:
    health = client.get("/healthz").json()
    samples = scrape(client)
    assert value(samples, "notes_index_info", version=health["index_version"], embedder=health["embedder"]) == 1
    assert value(samples, "notes_index_posts") == health["posts"]
    assert value(samples, "notes_index_chunks") == health["chunks"]
    assert value(samples, "notes_reload_errors_total") == 0


def test_a_build_that_fails_to_load_counts_as_a_reload_error(client: TestClient, index_dir: Path) -> None:
    engine = client.app.state.engine
    served = engine.retriever.index.version
    store.publish(index_dir, copy_build(index_dir, served, "20990101T000000-broken", "{not json"))
    engine.reload()
    engine.reload()  # the same broken build is one error, not one per check
    assert value(scrape(client), "notes_reload_errors_total") == 1


def test_no_request_text_reaches_a_label(client: TestClient) -> None:
    client.post("/ask", json={"question": QUESTION})
    client.get("/search", params={"q": QUESTION})
    client.get("/posts/zq-marker-7781")
    client.get("/zq-marker-7781/anything")
    client.request("ZQMARKER", "/ask")
    client.post("/feedback", json={"question": QUESTION, "answer": "a", "verdict": "up"})
    samples = scrape(client)
    labels = {(k, v) for _, pairs in samples for k, v in pairs}
    assert not [pair for pair in labels if "zq" in pair[1].lower() or "梯度" in pair[1]]
    routes = {v for k, v in labels if k == "route"}
    assert routes <= {"/ask", "/search", "/posts/{post_id}", "/feedback", "/metrics", "/healthz", "(unmatched)"}
    assert {v for k, v in labels if k == "method"} <= {"GET", "POST", "other"}


def test_fallbacks_are_counted_by_reason(index_dir: Path, embedder) -> None:
    # A model endpoint on a port where nothing listens: every answer falls back as "unreachable".
    engine = make_engine(index_dir, embedder, llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="m")
    with TestClient(create_app(engine.settings, engine)) as c:
        body = c.post("/ask", json={"question": QUESTION}).json()
        assert body["mode"] == "extractive" and body["warning"]
        samples = scrape(c)
    assert value(samples, "notes_llm_fallbacks_total", reason="unreachable") == 1
    assert value(samples, "notes_stage_duration_seconds_count", stage="llm") == 1


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ({}, 200),
        ({"host": "0.0.0.0"}, 404),  # a public bind without a key: no metrics
        ({"host": "0.0.0.0", "metrics": "on"}, 200),  # unless asked for
        ({"metrics": "off"}, 404),
        ({"host": "0.0.0.0", "api_key": "k3y"}, 401),  # with a key, behind it
    ],
)
def test_metrics_are_served_on_loopback_or_behind_the_key(built, embedder, settings: dict, status: int) -> None:
    engine = make_engine(built.index_dir, embedder, **settings)
    with TestClient(create_app(engine.settings, engine)) as c:
        assert c.get("/metrics").status_code == status
        if "api_key" in settings:
            assert c.get("/metrics", headers={"Authorization": "Bearer k3y"}).status_code == 200
