"""/mcp: the MCP tools (app/mcp.py) over streamable HTTP, inside the app, so behind its Host allow-list,
body limit and API key like every other route."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from app.deps import api_key
from app.engine import Engine
from app.errors import NotRunning
from app.mcp import notes_server
from app.metrics import Metrics

router = APIRouter(tags=["mcp"], dependencies=[Depends(api_key)])


def session_manager(engine: Engine, metrics: Metrics) -> StreamableHTTPSessionManager:
    """Stateless JSON: each POST is a whole exchange, so nothing is kept between requests. The SDK's own
    DNS-rebinding check is off because the app's Host allow-list has already run, with the names the
    operator configured (NOTES_ALLOWED_HOSTS)."""
    server = notes_server(engine, metrics)
    server.streamable_http_app(
        stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server.session_manager


class Handover(Response):
    """A response that lets an ASGI app (the SDK's transport) answer the request itself."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@router.api_route("/mcp", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def mcp(request: Request) -> Response:
    manager: StreamableHTTPSessionManager | None = request.app.state.mcp
    if manager is None:
        raise NotRunning("The MCP endpoint answers while the server runs (its lifespan has not started).")
    return Handover(manager.handle_request)
