"""POST /feedback: 👍 or 👎 on an answer -> one durable line in the feedback file (app/feedback.py)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from app import feedback
from app.deps import EngineDep, SettingsDep, api_key, json_body
from app.schemas import ERROR_RESPONSES, FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"], dependencies=[Depends(api_key), Depends(json_body)], responses=ERROR_RESPONSES)


@router.post("/feedback", response_model=FeedbackResponse, status_code=201)
async def post_feedback(body: FeedbackRequest, engine: EngineDep, settings: SettingsDep) -> FeedbackResponse:
    """Store a verdict on an answer; `python -m bench.eval --feedback` turns these into labelled questions,
    and `python -m app feedback export|delete` takes them out again."""
    index = engine.served
    rec = feedback.record(body.model_dump(exclude_none=True), index.version if index else None)
    await asyncio.to_thread(feedback.append, settings.feedback_path, rec)
    return FeedbackResponse(id=rec["id"])
