"""What routes take from a request besides their parameters: the engine, the metrics, a JSON body, the API key."""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.engine import Engine
from app.errors import Unauthorized, UnsupportedMediaType
from app.metrics import Metrics
from app.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Needed when the server sets NOTES_API_KEY.")


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def json_body(request: Request) -> None:
    """Only application/json: a cross-site form or `text/plain` fetch is a "simple" request that
    browsers send without asking the server first, so any web page could make this one work."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"The request body must be JSON sent as Content-Type: application/json, not {media_type or 'nothing'!r}."
        )


def api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With NOTES_API_KEY set, the request must carry it as a bearer token (compared in constant time)."""
    if settings.api_key is None:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, settings.api_key.get_secret_value().encode()):
        raise Unauthorized("This server needs its API key: send `Authorization: Bearer <NOTES_API_KEY>`.")
