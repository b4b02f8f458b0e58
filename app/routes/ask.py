"""POST /ask and /ask/stream: a question -> a cited answer, whole or as server-sent events."""
from __future__ import annotations

import contextlib
import json
import time
from typing import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from app.answer import Answer
from app.deps import EngineDep, MetricsDep, api_key, json_body
from app.schemas import ERROR_RESPONSES, AskRequest, AskResponse

router = APIRouter(tags=["ask"], dependencies=[Depends(api_key), Depends(json_body)], responses=ERROR_RESPONSES)


def response(result: Answer, started: float) -> AskResponse:
    timings = {**result.timings_ms, "total": round((time.perf_counter() - started) * 1000, 2)}
    return AskResponse(
        answer=result.answer, found=result.found, mode=result.mode, timings_ms=timings, warning=result.warning,
        citations=[c.__dict__ for c in result.citations],
    )


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/ask", response_model=AskResponse)
async def ask(body: AskRequest, engine: EngineDep, metrics: MetricsDep) -> AskResponse:
    """Answer a question from the notes, each sentence cited, or say the notes don't cover it."""
    started = time.perf_counter()
    result = await engine.answer(body.question, body.top_k, [t.model_dump() for t in body.history], body.post_filters())
    metrics.answered(result)
    return response(result, started)


@router.post("/ask/stream", response_class=StreamingResponse)
async def ask_stream(body: AskRequest, engine: EngineDep, metrics: MetricsDep) -> StreamingResponse:
    """Server-sent events: `token` events with the model's text as it is generated, marked
    `"provisional": true` because it is not validated yet, then one `done` event carrying the
    validated answer exactly as POST /ask returns it, which may differ or fall back to extractive."""
    started = time.perf_counter()
    engine.check_model()
    # Retrieval runs before the stream opens, so its errors are still plain JSON responses.
    history = [t.model_dump() for t in body.history]
    retriever, r = await engine.retrieve(body.question, body.top_k, history, body.post_filters())

    async def events() -> AsyncIterator[str]:
        # A client that goes away cancels this generator; closing the engine's stream closes the model's.
        async with contextlib.aclosing(engine.stream(retriever, r, body.question, body.top_k)) as items:
            async for item in items:
                if isinstance(item, str):
                    yield sse("token", {"text": item, "provisional": True})
                else:
                    metrics.answered(item)
                    yield sse("done", response(item, started).model_dump())

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
