"""GET /healthz: which build is served, and why a newer one is not."""
from __future__ import annotations

from fastapi import APIRouter

from app.deps import EngineDep
from app.schemas import ErrorResponse, Health

# Open without the API key, like a container health check: it tells versions and counts, never notes.
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": ErrorResponse}})
def healthz(engine: EngineDep) -> Health:
    """Which index is served; 503 until `python -m ingest` has built one."""
    index = engine.retriever.index
    return Health(
        status="ok", index_version=index.version, posts=len(index.posts), chunks=len(index.chunks),
        embedder=index.embedder, mode=engine.mode, last_reload_error=engine.reload_error,
    )
