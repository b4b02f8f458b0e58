"""GET /search: a query -> passages, best first, optionally among tagged or dated posts."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

from app.deps import EngineDep, api_key
from app.engine import Engine
from app.filters import Filters
from app.fuse import distinct_posts_first
from app.schemas import ERROR_RESPONSES, IsoDate, SearchResponse, SearchResult, Tag, trimmed

router = APIRouter(tags=["search"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)


def search_response(engine: Engine, q: str, k: int, filters: Filters = Filters()) -> SearchResponse:
    """Passages for `q`, the best passage of each post before second ones; shared with `python -m app search`."""
    retriever = engine.retriever
    index = retriever.index
    hits = retriever.search(q, k=max(k, 20), allowed=engine.catalog(retriever).mask(filters)).hits
    hits = distinct_posts_first(hits, [c.post_id for c in index.chunks])[:k]
    results = [
        SearchResult(
            post_id=(c := index.chunks[h.chunk]).post_id, chunk_id=c.chunk_id,
            title=c.title, text=c.text, score=round(h.score, 6),
        )
        for h in hits
    ]
    return SearchResponse(query=q, results=results)


def query_filters(
    tag: Annotated[list[Tag], Query(max_length=50, description="repeatable; posts with any of these tags")] = [],
    since: Annotated[IsoDate | None, Query(description="YYYY-MM-DD, included")] = None,
    until: Annotated[IsoDate | None, Query(description="YYYY-MM-DD, included")] = None,
) -> Filters:
    if since and until and since > until:
        raise RequestValidationError([{"loc": ("query", "since"), "msg": f"since ({since}) is after until ({until})"}])
    return Filters(tuple(tag), since, until)


@router.get("/search", response_model=SearchResponse)
def search(
    engine: EngineDep,
    filters: Annotated[Filters, Depends(query_filters)],
    q: Annotated[str, BeforeValidator(trimmed), Query(min_length=1, max_length=2000)],
    k: int = Query(10, ge=1, le=50),
) -> SearchResponse:
    """Passages for a query, best first, the best passage of each post before second ones; with `tag`,
    `since` or `until`, only passages of the posts that pass, ranked among themselves."""
    return search_response(engine, q, k, filters)

