"""Related notes: post vectors and nearest posts worked out by hand, then /posts/{id}/related and the note page."""
from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.related import by_max, by_mean, post_vectors
from app.views import post_page
from ingest.read import Post

GBDT, RF = "gbdt-gradient-boosting-decision-1c038d", "random-forests-cart-443cef"

# Four posts on three axes: post 0 has two chunks, one on x and one on y; post 1 lies on x, post 2 on y,
# post 3 on z. By their means, posts 1 and 2 are equally near post 0; by their closest chunks, both touch it.
VECTORS = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32)
CHUNK_POST = np.array([0, 0, 1, 2, 3])


def test_post_vectors_are_normalised_means_of_their_chunks() -> None:
    vecs = post_vectors(VECTORS, CHUNK_POST, 4)
    s = 1 / np.sqrt(2)
    assert np.allclose(vecs, [[s, s, 0], [1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]])


def test_nearest_posts_by_mean_and_by_closest_chunks() -> None:
    vecs = post_vectors(VECTORS, CHUNK_POST, 4)
    near = by_mean(vecs, 0, 3)
    assert [j for j, _ in near] == [2, 1, 3]
    assert np.allclose([s for _, s in near], [1.4 / np.sqrt(2), 1 / np.sqrt(2), 0])
    # Closest pair: post 1 shares post 0's x chunk exactly, post 2 is 0.8 from its y chunk. Post 0's two
    # chunks (cosine 0 to each other) never count, since a post is never its own neighbour.
    assert [(j, round(s, 4)) for j, s in by_max(VECTORS, CHUNK_POST, 4, 0, 3)] == [(1, 1.0), (2, 0.8), (3, 0.0)]
    assert [j for j, _ in by_mean(vecs, 3, 5)] == [0, 1, 2]  # k past the corpus: every other post, ties in order


def test_related_returns_the_nearest_other_posts(client: TestClient) -> None:
    r = client.get(f"/posts/{GBDT}/related", params={"k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["post_id"] == GBDT and body["related"][0]["post_id"] == RF  # both tree ensembles
    assert set(body["related"][0]) == {"post_id", "title", "opening", "date", "score"} and len(body["related"]) == 2
    assert client.get(f"/posts/{RF}/related").json()["related"][0]["post_id"] == GBDT
    everything = client.get(f"/posts/{GBDT}/related", params={"k": 20}).json()["related"]
    ids = [x["post_id"] for x in everything]
    assert len(ids) == 6 and GBDT not in ids  # the seven readable test posts but itself
    scores = [x["score"] for x in everything]
    assert scores == sorted(scores, reverse=True)


def test_related_errors(client: TestClient) -> None:
    assert client.get("/posts/nope/related").status_code == 404
    assert client.get(f"/posts/{GBDT}/related", params={"k": 0}).status_code == 422
    assert client.get(f"/posts/{GBDT}/related", params={"k": 21}).status_code == 422


def test_the_note_page_lists_related_notes_escaped(client: TestClient) -> None:
    html = client.get(f"/posts/{GBDT}", headers={"accept": "text/html"}).text
    related = html.split('<nav class="related"', 1)[1]
    assert related.count("<li>") == 5 and f'href="/posts/{RF}"' in related.split("</li>")[0]


def test_related_titles_and_ids_are_escaped_on_the_note_page() -> None:
    hostile = Post("x\"><b>", "<script>alert('title')</script>", "text")
    html = post_page(Post("a", "A", "text"), [(hostile, 0.5)])
    item = html.split('<nav class="related"', 1)[1]
    assert '<a href="/posts/x%22%3E%3Cb%3E">&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;</a>' in item
    assert '<span class="related-score">0.50</span>' in item and "<script>" not in html
    assert '<nav class="related"' not in post_page(Post("a", "A", "text"), [])
