"""What a hostile web page or network peer can send: foreign Host names, simple cross-site requests,
requests without the API key; and what every response tells the browser to refuse."""
from __future__ import annotations

import logging
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import LOOPBACK_HOSTS, Settings
from tests.conftest import make_engine

QUESTION = {"question": "为什么需要梯度检查点?"}


@pytest.fixture(scope="module")
def loopback(built, embedder) -> Iterator[TestClient]:
    """The app with the real default host list, as a browser on this machine reaches it."""
    engine = make_engine(built.index_dir, embedder, allowed_hosts=Settings().allowed_hosts)
    with TestClient(create_app(engine.settings, engine), base_url="http://localhost:8000") as c:
        yield c


@pytest.fixture(scope="module")
def keyed(built, embedder) -> Iterator[TestClient]:
    engine = make_engine(built.index_dir, embedder, api_key="s3cret-key")
    with TestClient(create_app(engine.settings, engine)) as c:
        yield c


def test_the_default_host_list_is_loopback_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().allowed_hosts == LOOPBACK_HOSTS == ["127.0.0.1", "localhost", "[::1]"]
    monkeypatch.setenv("NOTES_ALLOWED_HOSTS", "notes.example.com, ::1,,127.0.0.1")
    assert Settings().allowed_hosts == ["notes.example.com", "[::1]", "127.0.0.1"]


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_are_served(loopback: TestClient, host: str) -> None:
    assert loopback.get("/posts/xss-note", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.", "[::2]:8000", ""])
def test_a_foreign_host_name_is_refused(loopback: TestClient, host: str) -> None:
    # DNS rebinding: evil.example first resolves to the attacker, then to 127.0.0.1; the browser then
    # lets the attacker's page read our answers, but the Host header still says evil.example.
    paths = [("GET", "/posts/xss-note"), ("GET", "/search?q=x"), ("POST", "/ask"), ("GET", "/"),
             ("POST", "/feedback"), ("GET", "/metrics"), ("POST", "/mcp")]
    for method, path in paths:
        r = loopback.request(method, path, headers={"host": host}, json=QUESTION)
        assert r.status_code == 400 and r.text == "Invalid host header", (host, path)


def test_a_live_server_refuses_a_foreign_host(built, server_factory) -> None:
    server = server_factory(built.index_dir, allowed_hosts=Settings().allowed_hosts)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/healthz", headers={"host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_post_body_that_is_not_declared_json_gets_415(client: TestClient, content_type: str | None) -> None:
    # A page on any site may POST these without a CORS preflight; application/json needs one.
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/ask", "/ask/stream", "/feedback"):
        r = client.post(path, content=b'{"question": "\xe4\xb8\xba\xe4\xbb\x80\xe4\xb9\x88?"}', headers=headers)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", (path, r.text)


def test_json_with_a_charset_is_json(client: TestClient) -> None:
    r = client.post("/ask", content=b'{"question": "DDP"}', headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_deeply_nested_json_is_a_400_not_a_crash(built, server_factory, caplog: pytest.LogCaptureFixture) -> None:
    server = server_factory(built.index_dir)
    with caplog.at_level(logging.ERROR):
        r = httpx.post(
            f"{server.url}/ask", content=b'{"question":' + b"[" * 60_000, headers={"content-type": "application/json"}
        )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]  # no traceback in the log


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/", "text/html"), ("/static/index.html", "text/html"), ("/posts/xss-note", "text/html"), ("/docs", "text/html"),
     ("/posts/xss-note", "application/json"), ("/nowhere", "text/html")],
)
def test_every_response_tells_the_browser_not_to_frame_sniff_or_refer(client: TestClient, path: str, accept: str) -> None:
    h = client.get(path, headers={"accept": accept}).headers
    assert "frame-ancestors 'none'" in h["content-security-policy"] and "default-src 'self'" in h["content-security-policy"]
    assert "unsafe-inline" not in h["content-security-policy"]
    assert (h["x-content-type-options"], h["referrer-policy"], h["x-frame-options"]) == ("nosniff", "no-referrer", "DENY")


def test_a_note_varies_by_accept(client: TestClient) -> None:
    for accept in ("text/html", "application/json"):
        assert client.get("/posts/xss-note", headers={"accept": accept}).headers["vary"] == "Accept"


def test_docs_load_no_third_party_script(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "http://" not in html and "https://" not in html and "<script>" not in html  # files of ours only
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/static/docs.js"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 20, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "Notes QA"


def test_without_the_api_key_the_api_answers_401(keyed: TestClient) -> None:
    for method, path in [
        ("POST", "/ask"), ("POST", "/ask/stream"), ("GET", "/search?q=DDP"), ("GET", "/posts/xss-note"),
        ("GET", "/posts/xss-note/related"), ("GET", "/tags"), ("POST", "/feedback"), ("GET", "/metrics"),
        ("POST", "/mcp"), ("GET", "/mcp"),
    ]:
        for auth in (None, "Bearer wrong", "Bearer s3cret-key-longer", "Basic czNjcmV0LWtleQ==", "Bearer "):
            r = keyed.request(method, path, json=QUESTION, headers={"authorization": auth} if auth else {})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (path, auth)
            assert r.json()["error"]["code"] == "unauthorized" and "NOTES_API_KEY" in r.json()["error"]["message"]


def test_with_the_api_key_the_api_answers(keyed: TestClient) -> None:
    auth = {"authorization": "Bearer s3cret-key"}
    assert keyed.post("/ask", json=QUESTION, headers=auth).json()["found"] is True
    assert keyed.get("/posts/xss-note", headers=auth).status_code == 200
    # The page, its files and the health check stay open: they hold no note.
    for path in ("/", "/static/js/main.js", "/healthz", "/docs", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path
