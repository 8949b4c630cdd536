"""The dashboard: static pages under `/ui/`, talking to the native API with a bearer token."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

# Everything the page loads is its own (no CDN); it may talk to this server alone and
# may not be framed by another site. uPlot sizes its canvas through inline styles.
SECURITY_HEADERS = {
    b"content-security-policy": (
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'"
    ),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-cache",
}


class DashboardFiles(StaticFiles):
    """The package's static files, each answer with the dashboard's security headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"cache-control"]
                message["headers"] = headers + list(SECURITY_HEADERS.items())
            await send(message)

        await super().__call__(scope, receive, send_secured)


def to_dashboard() -> Response:
    """Where a browser that asks for the server itself is sent."""
    return RedirectResponse("/ui/", status_code=307)


async def _ui_root(request: Request) -> Response:
    return to_dashboard()


def routes() -> list[BaseRoute]:
    """`/ui` (sent on to `/ui/`) and the files under it; `/ui/` is the dashboard's page."""
    return [
        Route("/ui", _ui_root, methods=["GET", "HEAD"]),
        Mount("/ui", app=DashboardFiles(directory=STATIC, html=True), name="ui"),
    ]
