"""GET /search: a query -> passages, best first."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from app.deps import EngineDep, api_key
from app.fuse import distinct_posts_first
from app.schemas import ERROR_RESPONSES, SearchResponse, SearchResult

router = APIRouter(tags=["search"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)


@router.get("/search", response_model=SearchResponse)
def search(
    engine: EngineDep, q: str = Query(min_length=1, max_length=2000), k: int = Query(10, ge=1, le=50)
) -> SearchResponse:
    """Passages for a query, best first, the best passage of each post before second ones."""
    retriever = engine.retriever
    index = retriever.index
    hits = retriever.search(q.strip() or q, k=max(k, 20)).hits
    hits = distinct_posts_first(hits, [c.post_id for c in index.chunks])[:k]
    results = [
        SearchResult(
            post_id=(c := index.chunks[h.chunk]).post_id, chunk_id=c.chunk_id,
            title=c.title, text=c.text, score=round(h.score, 6),
        )
        for h in hits
    ]
    return SearchResponse(query=q, results=results)
