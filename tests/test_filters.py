"""Tag and date filters: the pure mask and search helpers, then /search, /ask and /tags on tagged, dated test posts."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.filters import Filters, chunk_mask, dense_within, terms_within, matches, post_date, tag_counts
from ingest import bm25
from ingest.read import Post

GC, GBDT, RF, W2V = (
    "gradient-checkpointing-7d01ea", "gbdt-gradient-boosting-decision-1c038d", "random-forests-cart-443cef",
    "word2vec-embeddings-bb19ae",
)
DDP, XSS = "quick-start-ddp-pytorch-f3f3c6", "xss-note"


def post(pid: str, date: str | None = None, tags: tuple[str, ...] = ()) -> Post:
    return Post(pid, pid, "text", date=date, tags=tags)


def test_matches_any_tag_case_insensitively_and_dates_inclusively() -> None:
    p = post("a", "2025-03-10T08:00:00", ("Ensemble", "trees"))
    assert post_date(p) == dt.date(2025, 3, 10)
    assert matches(p, Filters(tags=("ensemble",))) and matches(p, Filters(tags=("nlp", "TREES")))
    assert not matches(p, Filters(tags=("nlp",)))
    assert matches(p, Filters(since=dt.date(2025, 3, 10), until=dt.date(2025, 3, 10)))
    assert not matches(p, Filters(since=dt.date(2025, 3, 11))) and not matches(p, Filters(until=dt.date(2025, 3, 9)))
    # A post without a date that can be read is never inside a date range, and passes when there is none.
    for undated in (post("b"), post("c", "spring 2025"), post("d", "2025-02-30")):
        assert post_date(undated) is None
        assert not matches(undated, Filters(since=dt.date(2000, 1, 1))) and matches(undated, Filters())


def test_chunk_mask_and_dense_search_within_it() -> None:
    posts = [post("a", tags=("x",)), post("b"), post("c", tags=("x",))]
    chunk_post = np.array([0, 0, 1, 2, 1])
    assert chunk_mask(posts, chunk_post, Filters()) is None
    assert chunk_mask(posts, chunk_post, Filters(tags=("x",))).tolist() == [True, True, False, True, False]
    assert chunk_mask(posts, chunk_post, Filters(tags=("none",))).tolist() == [False] * 5

    vectors = np.eye(5, dtype=np.float32)
    query = np.array([0.1, 0.2, 0.9, 0.3, 0.8], dtype=np.float32)
    allowed = np.array([True, True, False, True, False])
    scores, ids = dense_within(vectors, query, allowed, 2)
    # Chunks 2 and 4 score highest but are not allowed: the two best allowed ones come back, not fewer.
    assert ids.tolist() == [[3, 1]] and np.allclose(scores, [[0.3, 0.2]])
    scores, ids = dense_within(vectors, query, np.zeros(5, dtype=bool), 2)
    assert ids.shape == (1, 0) and scores.shape == (1, 0)


def test_tag_counts_merge_case_and_sort_by_use() -> None:
    posts = {p.post_id: p for p in [post("a", tags=("trees", "Ensemble")), post("b", tags=("ensemble", "ensemble")), post("c", tags=("nlp",))]}
    assert list(tag_counts(posts).items()) == [("Ensemble", 2), ("nlp", 1), ("trees", 1)]


def test_tags_lists_every_tag_with_its_posts(client: TestClient) -> None:
    r = client.get("/tags")
    assert r.status_code == 200
    assert list(r.json().items()) == [
        ("ensemble", 2), ("trees", 2), ("deep-learning", 1), ("memory", 1), ("nlp", 1), ("Python", 1), ("test", 1),
    ]


def search_posts(client: TestClient, **params: object) -> list[str]:
    r = client.get("/search", params={"k": 10, **params})
    assert r.status_code == 200, r.text
    return [x["post_id"] for x in r.json()["results"]]


def test_search_ranks_only_the_allowed_posts(client: TestClient) -> None:
    assert search_posts(client, q="梯度检查点")[0] == GC
    # Filtered before ranking: the one nlp post fills the results, though it ranks last without the filter.
    assert set(search_posts(client, q="梯度检查点", tag="nlp")) == {W2V}
    assert set(search_posts(client, q="决策树", tag=["trees", "memory"])) == {GBDT, RF, GC}
    assert set(search_posts(client, q="决策树", since="2025-01-01", until="2025-12-31")) == {GBDT, GC}
    assert set(search_posts(client, q="决策树", until="2025-03-10")) == {GBDT, RF}
    assert set(search_posts(client, q="决策树", since="2026-01-11")) == {DDP, XSS}
    assert search_posts(client, q="决策树", tag="no-such-tag") == []


def test_ask_answers_from_the_allowed_posts_only(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "GBDT 和随机森林有什么区别?", "filters": {"tags": ["trees"]}})
    body = r.json()
    assert r.status_code == 200 and body["found"] is True
    assert {c["post_id"] for c in body["citations"]} <= {GBDT, RF}
    unfiltered = client.post("/ask", json={"question": "为什么需要梯度检查点?", "filters": None}).json()
    assert unfiltered["found"] is True and unfiltered["citations"][0]["post_id"] == GC


@pytest.mark.parametrize(
    "filters",
    [{"tags": ["no-such-tag"]}, {"since": "2030-01-01"}, {"tags": ["trees"], "since": "2026-01-01"}],
)
def test_a_filter_that_leaves_nothing_is_not_covered(client: TestClient, filters: dict) -> None:
    r = client.post("/ask", json={"question": "为什么需要梯度检查点?", "filters": filters})
    assert r.status_code == 200
    assert (r.json()["found"], r.json()["answer"], r.json()["citations"]) == (False, "我的笔记里没有涉及这个问题。", [])


def test_terms_are_looked_up_in_the_allowed_chunks_only() -> None:
    index = bm25.build([["梯度", "检查点"], ["梯度", "提升"], ["决策树"]])
    terms = ["梯度", "检查点", "新词"]
    assert terms_within(index, terms, np.array([True, True, True])) == {"梯度", "检查点"}
    assert terms_within(index, terms, np.array([False, True, True])) == {"梯度"}
    assert terms_within(index, terms, np.array([False, False, True])) == set()


def test_filtered_notes_that_never_mention_the_question_do_not_cover_it(client: TestClient) -> None:
    # The tree posts share "梯度" (gradient boosting) with the question, and nothing else.
    r = client.post("/ask", json={"question": "为什么需要梯度检查点?", "filters": {"tags": ["trees"]}})
    assert (r.json()["found"], r.json()["citations"]) == (False, [])


@pytest.mark.parametrize(
    "filters",
    [
        {"since": "2026-13-01"}, {"since": "2026/01/01"}, {"until": "1700000000"}, {"until": 1700000000},
        {"since": "2026-02-01", "until": "2026-01-01"}, {"tags": "trees"}, {"tags": [""]}, {"tag": ["trees"]},
        {"tags": [], "colour": "red"}, "trees",
    ],
)
def test_bad_filters_are_422(client: TestClient, filters: object) -> None:
    r = client.post("/ask", json={"question": "为什么需要梯度检查点?", "filters": filters})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text


@pytest.mark.parametrize(
    "params",
    [{"since": "2026-13-01"}, {"since": "yesterday"}, {"until": "1700000000"}, {"tag": ""},
     {"since": "2026-02-01", "until": "2026-01-01"}],
)
def test_bad_search_filters_are_422(client: TestClient, params: dict) -> None:
    r = client.get("/search", params={"q": "决策树", **params})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
