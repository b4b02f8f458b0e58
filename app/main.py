"""Build the FastAPI app: routes, the body-size guard, hot reload and the one error-to-status table."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.answer import Answer
from app.engine import Engine
from app.errors import BadRequest, PayloadTooLarge, PostNotFound
from app.fuse import distinct_posts_first
from app.schemas import AskRequest, AskResponse, ErrorResponse, Health, PostResponse, SearchResponse, SearchResult
from app.settings import Settings
from app.views import post_page
from ingest.errors import IndexCorrupt, IndexMismatch, IndexNotReady, NotesError

STATIC = Path(__file__).parent / "static"

# The only place where errors become HTTP statuses: (status, code).
ERRORS: dict[type[NotesError], tuple[int, str]] = {
    BadRequest: (422, "invalid_request"),
    PayloadTooLarge: (413, "payload_too_large"),
    PostNotFound: (404, "post_not_found"),
    IndexNotReady: (503, "index_not_ready"),
    IndexMismatch: (503, "index_mismatch"),
    IndexCorrupt: (503, "index_corrupt"),
}
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}
ERROR_RESPONSES = {s: {"model": ErrorResponse} for s in (404, 413, 422, 503)}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BodyLimit:
    """Refuse request bodies over `max_bytes`, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        too_large = PayloadTooLarge(f"The request body is over {self.max_bytes // 1024} KB.")
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise too_large
            return message

        await self.app(scope, limited, send)


def _validation_message(errors: list) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def parse_ask(raw: bytes) -> AskRequest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text.") from None
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    try:
        return AskRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_validation_message(exc.errors())) from None


def inline_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema with its $defs inlined: the request body is parsed by hand, so
    OpenAPI's components do not know these models."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.split("/")[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def response(result: Answer, started: float) -> AskResponse:
    timings = {**result.timings_ms, "total": round((time.perf_counter() - started) * 1000, 2)}
    return AskResponse(
        answer=result.answer, found=result.found, mode=result.mode, timings_ms=timings, warning=result.warning,
        citations=[c.__dict__ for c in result.citations],
    )


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = engine or Engine(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:
                await asyncio.sleep(settings.reload_interval)
                await asyncio.to_thread(engine.reload)

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    app = FastAPI(title="Notes QA", version="0.1.0", lifespan=lifespan, summary="Cited answers from your own notes.")
    app.state.engine = engine
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(NotesError)
    async def notes_error(_: Request, exc: NotesError) -> JSONResponse:
        status, code = next((v for cls, v in ERRORS.items() if isinstance(exc, cls)), (500, "internal_error"))
        return error(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", _validation_message(jsonable_encoder(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal_error", f"Unexpected {type(exc).__name__}; this is a bug.")

    ask_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": inline_schema(AskRequest)}}}}

    @app.post("/ask", response_model=AskResponse, responses=ERROR_RESPONSES, openapi_extra=ask_body)
    async def ask(request: Request) -> AskResponse:
        """Answer a question from the notes, each sentence cited, or say the notes don't cover it."""
        started = time.perf_counter()
        body = parse_ask(await request.body())
        history = [t.model_dump() for t in body.history]
        result = await run_in_threadpool(engine.answer, body.question, body.top_k, history)
        return response(result, started)

    @app.post(
        "/ask/stream", responses=ERROR_RESPONSES, openapi_extra=ask_body,
        response_class=StreamingResponse,
    )
    async def ask_stream(request: Request) -> StreamingResponse:
        """Server-sent events: `token` events with text as it is generated, then one `done` event
        carrying the validated answer, exactly as POST /ask returns it."""
        started = time.perf_counter()
        body = parse_ask(await request.body())
        history = [t.model_dump() for t in body.history]
        # Retrieval runs before the stream opens, so its errors are still plain JSON responses.
        retriever, r = await run_in_threadpool(engine.retrieve, body.question, body.top_k, history)

        def events() -> Iterator[str]:
            for item in engine.stream(retriever, r, body.question, body.top_k):
                if isinstance(item, str):
                    yield sse("token", {"text": item})
                else:
                    yield sse("done", response(item, started).model_dump())

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/search", response_model=SearchResponse, responses=ERROR_RESPONSES)
    def search(q: str = Query(min_length=1, max_length=2000), k: int = Query(10, ge=1, le=50)) -> SearchResponse:
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

    @app.get("/posts/{post_id}", response_model=PostResponse, responses=ERROR_RESPONSES)
    def get_post(post_id: str, request: Request) -> PostResponse | HTMLResponse:
        """A whole note: JSON, or a readable page when the client asks for text/html."""
        # A dictionary lookup, never a path: ids like ../x or with NUL simply do not exist.
        post = engine.retriever.index.posts.get(post_id)
        if post is None:
            raise PostNotFound(f"No post with id {post_id!r}.")
        accept = request.headers.get("accept", "")
        if "text/html" in accept and "application/json" not in accept:
            return HTMLResponse(post_page(post), headers=PAGE_HEADERS)
        return PostResponse(
            post_id=post.post_id, title=post.title, date=post.date, tags=list(post.tags), url=post.url, text=post.text
        )

    @app.get("/healthz", response_model=Health, responses={503: {"model": ErrorResponse}})
    def healthz() -> Health:
        """Which index is served; 503 until `python -m ingest` has built one."""
        index = engine.retriever.index
        return Health(
            status="ok", index_version=index.version, posts=len(index.posts), chunks=len(index.chunks),
            embedder=index.embedder, mode=engine.mode,
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def __getattr__(name: str) -> FastAPI:
    """`uvicorn app.main:app` builds the app from the environment on first access."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
