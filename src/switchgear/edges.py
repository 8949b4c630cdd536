"""Answers made before or beside any handler — an unknown path, a method the path does not
take, a body too large — in the error shape of the face whose prefix the path is under.

Each face's handlers render their own errors; these answers come from the router and the
body cap, which know nothing of faces. The table below says which face a path belongs
to: `/v1/` is shared by the smart plug and the power controller, so each claims its own
second segment; the smart-MAIC meter answers on `/` with a `page` query; anything else
(`/api/...` included) gets the native API's problem document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from switchgear.api.problems import problem as native_problem
from switchgear.dialects.http import MAX_BODY as DIALECT_MAX_BODY
from switchgear.dialects.http import JsonResponse
from switchgear.dialects.meterhttp.wire import reply as meter_reply
from switchgear.dialects.multisocket.errors import gateway
from switchgear.dialects.powercontroller.errors import message
from switchgear.dialects.smartplug.errors import problem as smartplug_problem

NATIVE_MAX_BODY = 1024 * 1024

Render = Callable[[int, str], Response]


def _phrase(status: int) -> str:
    if status == 413:
        return "Payload Too Large"  # what this server has always called it (RFC 7231's name)
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True)
class Face:
    """How one face answers outside its handlers."""

    name: str
    render: Render
    max_body: int  # the largest request body the face reads


NATIVE = Face("native", lambda s, text: native_problem(s, _phrase(s), text), NATIVE_MAX_BODY)
SMARTPLUG = Face(
    "smartplug", lambda s, text: smartplug_problem(s, _phrase(s), text), DIALECT_MAX_BODY
)
MULTISOCKET = Face("multisocket", gateway, DIALECT_MAX_BODY)
POWERCONTROLLER = Face("powercontroller", message, DIALECT_MAX_BODY)
PUSH3 = Face(
    "push3", lambda s, text: JsonResponse({"error": text}, status_code=s), DIALECT_MAX_BODY
)
METERHTTP = Face("meterhttp", lambda s, text: meter_reply(s, {"error": text}), DIALECT_MAX_BODY)

FLOOR = min(face.max_body for face in (NATIVE, SMARTPLUG, MULTISOCKET, POWERCONTROLLER, PUSH3,
                                       METERHTTP))  # fmt: skip

# path prefix (a whole segment or more) -> face
PREFIXES: dict[str, Face] = {
    "/api": NATIVE,
    "/provider": SMARTPLUG,
    "/v1/provider": SMARTPLUG,
    "/v1/auth": SMARTPLUG,
    "/v1/controllers": SMARTPLUG,
    "/multioutlet": MULTISOCKET,
    "/v1/signin": POWERCONTROLLER,
    "/v1/devices": POWERCONTROLLER,
    "/v1/statuses": POWERCONTROLLER,
    "/v1/tokens": POWERCONTROLLER,
    "/sendCommand": PUSH3,
    "/sub": PUSH3,
    "/ws": PUSH3,
}


def face_of(scope: Scope) -> Face:
    """The face a request's path belongs to (the native API when none claims it)."""
    path: str = scope.get("path", "/")
    if path == "/":
        query = scope.get("query_string", b"").decode("latin-1")
        if "page" in query and any(
            name == "page" for name, _ in parse_qsl(query, keep_blank_values=True)
        ):
            return METERHTTP
        return NATIVE
    segments = path.split("/")
    for n in (3, 2):  # `/v1/devices` before `/v1`, `/provider` alone
        face = PREFIXES.get("/".join(segments[:n]))
        if face is not None:
            return face
    return NATIVE


def allowed(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route at this path takes (Starlette names only the first's)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def answer(scope: Scope, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer in the shape of the face the request's path belongs to."""
    response = face_of(scope).render(status, text)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    """The root's handler of Starlette's HTTPException (a 405 from its router, above all)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed(request.app.router.routes, request.scope))
    text = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return answer(request.scope, exc.status_code, text, headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """An exception that got past observe.py (which answers and logs a route's own): 500 in
    the face's shape (Starlette's ServerErrorMiddleware calls this, then re-raises for the
    server to log)."""
    return answer(request.scope, 500, "Internal Server Error")


class Fallback:
    """The root's default app: a path no face route matched goes to the native API when it
    is the native API's, and gets its face's 404 otherwise."""

    def __init__(self, native: ASGIApp) -> None:
        self.native = native

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        face = face_of(scope) if scope["type"] == "http" else NATIVE
        if face is NATIVE:
            await self.native(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        response = face.render(404, f"no route {method} {path}")
        await response(scope, receive, send)
