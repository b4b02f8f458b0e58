"""GET / and GET /docs: the chat page and the API's Swagger UI, both served from this machine."""
from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
# Swagger UI's files, from the fastapi-offline package: /docs works offline and loads no third-party script.
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/docs")
def docs() -> FileResponse:
    return FileResponse(STATIC / "docs.html")
