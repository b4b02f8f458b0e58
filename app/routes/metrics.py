"""GET /metrics: the app's metrics in the Prometheus text format, behind the API key like the rest."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import MetricsDep, api_key
from app.schemas import ERROR_RESPONSES

router = APIRouter(tags=["metrics"], dependencies=[Depends(api_key)], responses=ERROR_RESPONSES)


@router.get("/metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    """Requests by route and status, latency per route and per answering stage, answers found or abstained,
    LLM fallbacks by reason, the served index and failed reloads. Served by default on a loopback bind only,
    or with NOTES_API_KEY set (NOTES_METRICS)."""
    return Response(m.text(), media_type=CONTENT_TYPE_LATEST)
