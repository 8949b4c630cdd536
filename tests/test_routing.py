"""The indexed root router answers exactly as Starlette's router would."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router

from switchgear.routing import IndexedRouter


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
