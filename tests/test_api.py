"""The HTTP contract, end to end through TestClient on an index built by the real ingest."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from ingest.build import build
from ingest.settings import IngestSettings
from tests.conftest import make_engine


def ask(client: TestClient, question: str, **extra: object) -> dict:
    r = client.post("/ask", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def assert_markers_resolve(body: dict) -> None:
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])]
    numbers = [c["n"] for c in body["citations"]]
    assert markers and set(markers) == set(numbers)
    assert numbers == list(range(1, len(numbers) + 1))
    assert list(dict.fromkeys(markers)) == numbers  # numbered in order of first use


def test_a_chinese_question_cites_the_named_post_first(client: TestClient) -> None:
    body = ask(client, "为什么需要梯度检查点?")
    assert body["found"] is True and body["mode"] == "extractive"
    assert body["citations"][0]["post_id"] == "gradient-checkpointing-7d01ea"
    assert_markers_resolve(body)
    for sentence in re.split(r"\s*\[\d+\]\s*", body["answer"]):
        assert not sentence or any(sentence in c["snippet"] for c in body["citations"])  # nothing invented
    assert set(body["timings_ms"]) >= {"embed", "total"}


def test_an_english_question_finds_the_chinese_note(client: TestClient) -> None:
    body = ask(client, "How does DDP synchronise gradients across GPUs?")
    assert body["found"] is True
    assert body["citations"][0]["post_id"] == "quick-start-ddp-pytorch-f3f3c6"
    assert_markers_resolve(body)


@pytest.mark.parametrize(
    ("question", "reply"),
    [("红烧肉怎么做?", "我的笔记里没有涉及这个问题。"), ("What is the capital of Australia?", "My notes don't cover this.")],
)
def test_an_off_topic_question_abstains_in_its_language(client: TestClient, question: str, reply: str) -> None:
    body = ask(client, question)
    assert (body["found"], body["answer"], body["citations"]) == (False, reply, [])


def test_search_puts_distinct_posts_first(client: TestClient) -> None:
    r = client.get("/search", params={"q": "随机森林 决策树", "k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["post_id"] == "random-forests-cart-443cef"
    assert len({x["post_id"] for x in results}) == len(results) == 3
    assert [x["score"] for x in results] == sorted((x["score"] for x in results), reverse=True)


def test_posts_are_json_by_default_and_escaped_html_on_request(client: TestClient) -> None:
    r = client.get("/posts/xss-note")
    assert r.status_code == 200 and r.json()["tags"] == ["test"] and r.json()["date"] == "2026-02-01"
    html = client.get("/posts/xss-note", headers={"accept": "text/html"}).text
    assert "<script>" not in html and "&lt;script&gt;alert('xss')&lt;/script&gt;" in html
    assert "<img" not in html and "javascript:" not in html.split("</h1>")[0]


@pytest.mark.parametrize("post_id", ["nope", "..%2F..%2Fetc%2Fpasswd", "a%00b", "%2e%2e"])
def test_unknown_posts_are_404_json(client: TestClient, post_id: str) -> None:
    r = client.get(f"/posts/{post_id}")
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message"}


def test_healthz_reports_the_index(client: TestClient, embedder) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["posts"] == 7 and body["embedder"] == embedder.name
    assert body["mode"] == "extractive"


def test_the_page_and_the_docs_are_served(client: TestClient) -> None:
    assert "text/html" in client.get("/").headers["content-type"]
    assert client.get("/openapi.json").json()["paths"]["/ask"]["post"]["requestBody"]


BAD_BODIES = [
    b'{"question": ""}',
    b'{"question": "   \\n\\t "}',
    b'{"question": "\\u0000\\u0001\\u0002"}',
    ('{"question": "' + "问" * 2001 + '"}').encode(),
    b'{"question": "ok", "top_k": 0}',
    b'{"question": "ok", "top_k": 21}',
    b'{"question": "ok", "top_k": "5"}',
    b'{"question": "ok", "top_k": true}',
    b'{"question": 42}',
    b'{"question": null}',
    b'{"question": ["a", {"b": [1, 2, {"c": null}]}]}',
    b'{"top_k": 3}',
    b"[]",
    b'"just a string"',
    b"{not json",
    b"",
    b'{"question": ' + b"[" * 900 + b"]" * 900 + b"}",  # parses, and is too deep for a naive error encoder
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_malformed_requests_get_422_json(client: TestClient, body: bytes) -> None:
    r = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request" and r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"question": "caf\xe9"}'.encode("latin-1"), "The request body is not UTF-8 text."),
        (b'{"question":' + b"[" * 60_000, "The request body is nested too deeply to read."),  # issue 10, row 8
        (b'{"question": "DDP", "top_k": ' + b"9" * 5000 + b"}", "There was an error parsing the body"),
    ],
)
def test_a_body_that_cannot_be_decoded_gets_400_json(client: TestClient, body: bytes, message: str) -> None:
    r = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": {"code": "invalid_request", "message": message}}


def test_bad_search_parameters_get_422(client: TestClient) -> None:
    for params in ({"q": ""}, {"q": " \t"}, {"q": "\x00\x01\x02"}, {"q": "x", "k": 0}, {"q": "x", "k": 51}, {"q": "x", "k": "many"}, {}):
        r = client.get("/search", params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_a_body_over_64_kb_is_refused_with_413(client: TestClient) -> None:
    r = client.post("/ask", content=b'{"question": "' + b"a" * 70_000 + b'"}', headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(20):
            yield b"a" * 8192

    r = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_wrong_method_and_unknown_route_are_json(client: TestClient) -> None:
    assert client.get("/ask").json()["error"]["code"] == "method_not_allowed"
    assert client.get("/nowhere").status_code == 404


def test_without_an_index_the_server_starts_and_says_what_to_do(tmp_path: Path, embedder) -> None:
    engine = make_engine(tmp_path / "indexes", embedder)
    with TestClient(create_app(engine.settings, engine)) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and "python -m ingest" in r.json()["error"]["message"]
        assert c.post("/ask", json={"question": "梯度检查点"}).status_code == 503
        assert c.get("/").status_code == 200


def test_hot_reload_serves_a_new_post_without_a_failed_request(
    built: IngestSettings, tmp_path: Path, embedder, server_factory
) -> None:
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.index_dir, tmp_path / "indexes")
    settings = IngestSettings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "indexes")
    server = server_factory(settings.index_dir, reload_interval=0.5)
    question = {"question": "Dropout 为什么能防止过拟合?"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/ask", json=question).json()["found"] is False
        (settings.corpus_dir / "dropout.md").write_text(
            "# Dropout\n\nDropout 在训练时随机丢弃一部分神经元,让网络不依赖个别神经元,从而减轻过拟合。\n", "utf-8"
        )
        build(settings, embedder=embedder)
        published = time.monotonic()
        while True:
            r = http.post("/ask", json=question)
            assert r.status_code == 200
            if r.json()["found"] and r.json()["citations"][0]["post_id"] == "dropout":
                break
            assert time.monotonic() - published < 2.0, "the new build was not served within 2 s"
            time.sleep(0.05)
        assert http.get("/healthz").json()["posts"] == 8
