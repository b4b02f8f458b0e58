"""GET /posts/{post_id}: a whole note, as JSON or as a readable page."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from app.deps import EngineDep, api_key
from app.errors import PostNotFound
from app.schemas import ERROR_RESPONSES, PostResponse
from app.views import post_page

router = APIRouter(tags=["posts"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)


@router.get("/posts/{post_id}", response_model=PostResponse)
def get_post(post_id: str, request: Request, response: Response, engine: EngineDep) -> PostResponse | HTMLResponse:
    """A whole note: JSON, or a readable page when the client asks for text/html."""
    # A dictionary lookup, never a path: ids like ../x or with NUL simply do not exist.
    post = engine.retriever.index.posts.get(post_id)
    if post is None:
        raise PostNotFound(f"No post with id {post_id!r}.")
    # The same URL answers JSON or HTML by Accept: a cache must keep the two apart.
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(post_page(post), headers={"Vary": "Accept"})
    response.headers["Vary"] = "Accept"
    return PostResponse(
        post_id=post.post_id, title=post.title, date=post.date, tags=list(post.tags), url=post.url, text=post.text
    )
