"""GET /tags: the tags of the served notes -> {tag: number of posts}."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from app.deps import EngineDep, api_key
from app.filters import tag_counts
from app.schemas import ERROR_RESPONSES

router = APIRouter(tags=["tags"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)


@router.get("/tags", response_model=dict[str, int])
def tags(engine: EngineDep) -> dict[str, int]:
    """Every tag of the served notes with its number of posts, most used first; filter with it in
    `GET /search?tag=` and in the `filters` of `POST /ask`."""
    return tag_counts(engine.retriever.index.posts)
