"""The root router and the root app answer exactly as Starlette's own would."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from switchgear.bodylimit import BodyLimit
from switchgear.routing import IndexedRouter, Root


def _named(name: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {request.path_params}")

    return endpoint


ROUTES = [
    Route("/v1/devices/{device_id}", _named("param"), methods=["GET"]),
    Route("/v1/devices/info", _named("static-after-param"), methods=["GET"]),
    Route("/v1/devices", _named("list"), methods=["GET"]),
    Route("/v1/devices", _named("add"), methods=["POST"]),
    Route("/only-post", _named("post"), methods=["POST"]),
    Route("/", _named("root"), methods=["GET"]),
]

CASES = [
    ("GET", "/v1/devices/info", 200),  # the parameter route comes first and wins
    ("GET", "/v1/devices/7", 200),
    ("GET", "/v1/devices", 200),
    ("POST", "/v1/devices", 200),
    ("DELETE", "/v1/devices", 405),  # from the partial matches
    ("GET", "/only-post", 405),
    ("GET", "/", 200),
    ("GET", "/nowhere", 404),
    ("GET", "/v1/devices/", 307),  # redirect_slashes
]


@pytest.mark.parametrize(("method", "path", "status"), CASES)
async def test_indexed_router_answers_as_starlette_does(
    method: str, path: str, status: int
) -> None:
    answers = []
    for router in (Router(ROUTES), IndexedRouter(ROUTES)):
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.request(method, path)
        answers.append((r.status_code, r.text, r.headers.get("allow"), r.headers.get("location")))
    assert answers[0] == answers[1]
    assert answers[1][0] == status


# --- Root: ASGI endpoints at fixed paths called straight --------------------------------


class Echo:
    """An ASGI endpoint (as a dialect's `Endpoint` is): the body's length and the scope."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        body = await request.body()
        if body == b"boom":
            raise RuntimeError("a bug in the endpoint")
        seen = (self.name, len(body), request.app.state.tag, request.path_params,
                scope["route"].path, scope["endpoint"] is self)  # fmt: skip
        await PlainTextResponse(repr(seen))(scope, receive, send)


ECHO_ROUTES = [
    Route("/v1/things/{id}", _named("param"), methods=["POST"]),
    Route("/v1/things/list", Echo("list"), methods=["GET"]),  # the parameter route is first
    Route("/v1/things", Echo("post"), methods=["POST"]),
    Route("/v1/things", _named("plain"), methods=["GET"]),  # a function: the full stack
    Route("/echo", Echo("echo"), methods=["POST", "GET"]),
]

ECHO_CASES = [
    ("POST", "/echo", b"hello", 200),
    ("GET", "/echo", b"", 200),
    ("HEAD", "/echo", b"", 200),
    ("PUT", "/echo", b"", 405),
    ("POST", "/v1/things", b"x" * 10, 200),
    ("GET", "/v1/things", b"", 200),
    ("DELETE", "/v1/things", b"", 405),
    ("GET", "/v1/things/list", b"", 200),
    ("POST", "/v1/things/list", b"", 200),  # the parameter route takes it
    ("POST", "/echo", b"y" * 2048, 413),  # the body cap, declared length
    ("GET", "/nowhere", b"", 404),
]


def _apps() -> list[Starlette]:
    full = Starlette(middleware=[Middleware(BodyLimit, max_bytes=1024)])
    full.router = IndexedRouter(ECHO_ROUTES)
    root = Root(ECHO_ROUTES, middleware=[Middleware(BodyLimit, max_bytes=1024)])
    for app in (full, root):
        app.state.tag = "state"
    return [full, root]


@pytest.mark.parametrize(("method", "path", "body", "status"), ECHO_CASES)
async def test_root_answers_as_the_full_stack_does(
    method: str, path: str, body: bytes, status: int
) -> None:
    answers = []
    for app in _apps():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.request(method, path, content=body)
        answers.append((r.status_code, r.text, r.headers.get("allow")))
    assert answers[0] == answers[1]
    assert answers[1][0] == status


def test_root_calls_fixed_path_endpoints_straight() -> None:
    root = _apps()[1]
    direct = set(root._build_direct())
    assert direct == {("/echo", "POST"), ("/echo", "GET"), ("/echo", "HEAD"),
                      ("/v1/things", "POST"), ("/v1/things/list", "GET"),
                      ("/v1/things/list", "HEAD")}  # fmt: skip


async def test_root_caps_a_streamed_body_on_the_direct_path() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"z" * 512

    root = _apps()[1]
    transport = httpx.ASGITransport(app=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/echo", content=chunks())
    assert r.status_code == 413
    assert r.json()["title"] == "Payload Too Large"


async def test_root_answers_a_bug_on_the_direct_path_with_a_plain_500() -> None:
    root = _apps()[1]
    transport = httpx.ASGITransport(app=root, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/echo", content=b"boom")
    assert (r.status_code, r.text) == (500, "Internal Server Error")
