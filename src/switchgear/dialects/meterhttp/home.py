"""`/` without `page`: what a meter shows a browser, here this server's dashboard."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response


def home() -> Response:
    """A browser asking for the server itself is sent to the dashboard."""
    return RedirectResponse("/ui/", status_code=307)
