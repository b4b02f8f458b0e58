"""Build the FastAPI app: settings -> routers, middleware, hot reload and the one error-to-status table."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import middleware
from app.engine import Engine
from app.errors import ModelBusy, NotRunning, PostNotFound, Unauthorized, UnsupportedMediaType
from app.metrics import Metrics, RequestMetrics
from app.routes import ask, feedback, health, mcp, metrics, page, posts, search, tags
from app.settings import Settings
from app.watcher import start_watching
from ingest.errors import IndexCorrupt, IndexMismatch, IndexNotReady, NotesError
from ingest.settings import IngestSettings

log = logging.getLogger("app")

# The only place where errors become HTTP statuses: (status, code, headers).
ERRORS: dict[type[NotesError], tuple[int, str, dict[str, str]]] = {
    Unauthorized: (401, "unauthorized", {"WWW-Authenticate": "Bearer"}),
    PostNotFound: (404, "post_not_found", {}),
    UnsupportedMediaType: (415, "unsupported_media_type", {}),
    ModelBusy: (503, "model_busy", {"Retry-After": "2"}),
    NotRunning: (503, "not_running", {}),
    IndexNotReady: (503, "index_not_ready", {}),
    IndexMismatch: (503, "index_mismatch", {}),
    IndexCorrupt: (503, "index_corrupt", {}),
}
# Errors raised by FastAPI and Starlette themselves.
HTTP_CODES = {
    400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
}
# FastAPI answers a JSON body it cannot decode with a bare 400 "error parsing the body"; say why.
UNREADABLE_BODY: dict[type[Exception], str] = {
    UnicodeDecodeError: "The request body is not UTF-8 text.",
    RecursionError: "The request body is nested too deeply to read.",
}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_message(errors: list[dict]) -> str:
    # Only locations and messages: the rejected input itself may be nested deep enough to break an encoder.
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


@contextlib.asynccontextmanager
async def _reloading(app: FastAPI) -> AsyncIterator[None]:
    """Pick up builds that `python -m ingest` publishes, for as long as the app runs; with a corpus
    to watch, also run the watcher that publishes them."""
    engine: Engine = app.state.engine
    halt = start_watching(engine, app.state.watch) if app.state.watch else None

    async def poll() -> None:
        while True:
            await asyncio.sleep(engine.settings.reload_interval)
            try:
                await asyncio.to_thread(engine.reload)
            except Exception:  # reload reports bad builds itself; this is a bug, and the loop must outlive it
                log.exception("the reload check failed")

    task = asyncio.create_task(poll())
    # A session manager runs once; a new one for each start of the app (tests start one app several times).
    app.state.mcp = mcp.session_manager(engine, app.state.metrics)
    async with app.state.mcp.run():
        yield
    app.state.mcp = None
    task.cancel()
    if halt is not None:
        await asyncio.to_thread(halt)


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, watch: IngestSettings | None = None
) -> FastAPI:
    """The app; with `watch`, it also watches that corpus and ingests every change (`python -m app --watch`)."""
    settings = settings or Settings()
    app = FastAPI(
        title="Notes QA", version="0.1.0", summary="Cited answers from your own notes.", lifespan=_reloading,
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or Engine(settings)
    app.state.watch = watch
    app.state.metrics = Metrics(app.state.engine)
    app.state.mcp = None  # the MCP transport's session manager, while the lifespan runs
    middleware.install(app, settings)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)  # outermost: refusals count too

    @app.exception_handler(NotesError)
    async def notes_error(_: Request, exc: NotesError) -> JSONResponse:
        status, code, headers = next((v for cls, v in ERRORS.items() if isinstance(exc, cls)), (500, "internal_error", {}))
        return error(status, code, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", _validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 413:
            message = f"The request body is over {settings.max_body_bytes // 1024} KB."
        elif exc.status_code == 400 and type(exc.__cause__) in UNREADABLE_BODY:
            message = UNREADABLE_BODY[type(exc.__cause__)]
        return error(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), message, exc.headers)

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal_error", f"Unexpected {type(exc).__name__}; this is a bug.")

    routers = [ask.router, search.router, tags.router, posts.router, feedback.router, mcp.router, health.router, page.router]
    for router in routers + ([metrics.router] if settings.metrics_served else []):
        app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=page.SWAGGER_UI), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    return app


def __getattr__(name: str) -> FastAPI:
    """`uvicorn app.main:app` builds the app from the environment on first access."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
