"""GET /posts/{post_id} and /posts/{post_id}/related: a whole note, as JSON or as a readable page, and its neighbours."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from app.deps import EngineDep, api_key
from app.engine import Engine
from app.errors import PostNotFound
from app.schemas import ERROR_RESPONSES, PostResponse, RelatedPost, RelatedResponse
from app.views import opening, post_page
from ingest.read import Post

router = APIRouter(tags=["posts"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)
# Related notes listed on a note's page.
PAGE_RELATED = 5


def find_post(engine: Engine, post_id: str) -> Post:
    # A dictionary lookup, never a path: ids like ../x or with NUL simply do not exist.
    post = engine.retriever.index.posts.get(post_id)
    if post is None:
        raise PostNotFound(f"No post with id {post_id!r}.")
    return post


def _related(engine: Engine, post_id: str, k: int) -> list[tuple[Post, float]]:
    return engine.catalog(engine.retriever).related(post_id, k)


@router.get("/posts/{post_id}", response_model=PostResponse)
def get_post(post_id: str, request: Request, response: Response, engine: EngineDep) -> PostResponse | HTMLResponse:
    """A whole note: JSON, or a readable page, with its related notes, when the client asks for text/html."""
    post = find_post(engine, post_id)
    # The same URL answers JSON or HTML by Accept: a cache must keep the two apart.
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(post_page(post, _related(engine, post_id, PAGE_RELATED)), headers={"Vary": "Accept"})
    response.headers["Vary"] = "Accept"
    return post_response(post)


def post_response(post: Post) -> PostResponse:
    """A whole note as JSON; shared with the MCP tool get_note."""
    return PostResponse(
        post_id=post.post_id, title=post.title, date=post.date, tags=list(post.tags), url=post.url, text=post.text
    )


@router.get("/posts/{post_id}/related", response_model=RelatedResponse)
def related(post_id: str, engine: EngineDep, k: int = Query(5, ge=1, le=20)) -> RelatedResponse:
    """The k other posts nearest to this one by their vectors (the mean of each post's chunks), best first."""
    find_post(engine, post_id)
    return RelatedResponse(
        post_id=post_id,
        related=[
            RelatedPost(post_id=p.post_id, title=p.title, opening=opening(p), date=p.date, score=round(score, 4))
            for p, score in _related(engine, post_id, k)
        ],
    )
