"""One unexpected error, one ERROR record: on every face, a fault inside a route is logged
once with its traceback and the request id the client was given, never with a secret of
the request, while the client gets its face's own 500. The app runs under uvicorn, as
served, so a record the server adds for an exception the app let out is counted too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from switchgear.app import create_app
from switchgear.core.model import Device, DeviceState, HistoryPage
from switchgear.dialects.meterhttp.pins import PinGuard
from switchgear.dialects.multisocket.gate import Quota
from switchgear.dialects.powercontroller.ids import Index
from switchgear.dialects.push3.channels import Hub
from switchgear.dialects.render import ShadowCache
from switchgear.logs import RequestIdFilter
from switchgear.observe import Observe
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import MemoryStore
from tests.conftest import World, world_on

PASSWORD = "correct horse A"  # account a's, as tests/conftest.py creates it
PIN = "012345"


class Fault(RuntimeError):
    """A bug below a face, its message carrying what the failing call was given."""


@dataclass
class Leak:
    """What the next fault says: secrets written the ways libraries write them."""

    text: str = "nothing yet"

    def fault(self) -> Fault:
        return Fault(self.text)


LEAK = Leak()


class BrokenHistory(MemoryStore):
    async def history(
        self, device_ids: Sequence[int] | None, start: float, end: float,
        cursor: str | None = None, limit: int = 500, account_id: int | None = None,
    ) -> HistoryPage:  # fmt: skip
        raise LEAK.fault()


class BrokenCache(ShadowCache[bytes]):
    def get(self, device_id: int, state: DeviceState) -> bytes:
        raise LEAK.fault()


class BrokenIndex(Index):
    def lookup(self, rt: Runtime, account_id: int, api_id: str) -> Device:
        raise LEAK.fault()


class BrokenQuota(Quota):
    def __init__(self) -> None:
        pass

    async def spend(self, account_id: int) -> None:
        raise LEAK.fault()


class BrokenHub(Hub):
    def __init__(self) -> None:
        pass

    def get(self, channel_id: str, account_id: int | None) -> Any:
        raise LEAK.fault()


class BrokenPins(PinGuard):
    def __init__(self) -> None:
        pass

    async def reserve(self, address: str, devid: str) -> Any:
        raise LEAK.fault()


@dataclass
class Served:
    w: World
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def on_uvicorn(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    """Serve `app` on a real uvicorn (its port), its records reaching the root logger (and
    caplog) as `serve` has them do."""
    uvicorn_logger = logging.getLogger("uvicorn")
    monkeypatch.setattr(uvicorn_logger, "propagate", True)
    monkeypatch.setattr(uvicorn_logger, "handlers", [])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                           access_log=False, lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    settings = Settings(
        database_url="memory://", speed=0, secret_key="test-secret-key-of-at-least-32-bytes"
    )
    app = create_app(settings, store=BrokenHistory())
    async with (
        app.router.lifespan_context(app),
        world_on(app) as w,
        on_uvicorn(app, monkeypatch) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c,
    ):
        yield Served(w, c)


async def _credential(w: World, kind: str) -> dict[str, Any]:
    r = await w.client.post("/api/v1/credentials", json={"kind": kind}, headers=w.auth())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _smartplug(s: Served) -> tuple[httpx.Request, list[str]]:
    login = {"client_id": "mclimate", "client_secret": "mclimate_core",
             "username": "a@example.com", "password": PASSWORD}  # fmt: skip
    token = (await s.w.client.post("/v1/auth/login", json=login)).json()["auth"]["access_token"]
    s.w.rt.extensions["smartplug.fetch"] = BrokenCache(lambda st: b"")
    LEAK.text = f"login {login!r} then Authorization: Bearer {token}"
    request = s.client.build_request("POST", "/provider/fetch", json={"serial_number": "SPG-A-1"},
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    return request, [PASSWORD, token, "mclimate_core"]


async def _powercontroller(s: Served) -> tuple[httpx.Request, list[str]]:
    signin = {"user": {"email": "a@example.com", "password": PASSWORD}}
    token = (await s.w.client.post("/v1/signin", json=signin)).json()["token"]
    s.w.rt.extensions["powercontroller.ids"] = BrokenIndex()
    LEAK.text = f"lookup for {signin} with headers {{'authorization': 'Bearer {token}'}}"
    request = s.client.build_request("GET", "/v1/devices/abc",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    return request, [PASSWORD, token]


async def _multisocket(s: Served) -> tuple[httpx.Request, list[str]]:
    key = (await _credential(s.w, "multisocket.key"))["subscription_key"]
    s.w.rt.extensions["multisocket.quota"] = BrokenQuota()
    LEAK.text = f'quota of {{"Ocp-Apim-Subscription-Key": "{key}"}} ?subscription-key={key}'
    url = ("/multioutlet/plug/energy/addressLocation/plants/"
           "c81a6af1-4087-4a83-9716-d452c6fda079/parameter/id/value/x")  # fmt: skip
    return s.client.build_request("GET", url, headers={"Ocp-Apim-Subscription-Key": key}), [key]


async def _push3(s: Served) -> tuple[httpx.Request, list[str]]:
    key = (await _credential(s.w, "push3.key"))["key"]
    s.w.rt.extensions["push3.channels"] = BrokenHub()
    LEAK.text = f"channel read for GET /sub/x?key={key} {{'meter_password': '00001234'}}"
    request = s.client.build_request("GET", "/sub/response_abcdefghijklmnop", params={"key": key})
    return request, [key, "00001234"]


async def _meterhttp(s: Served) -> tuple[httpx.Request, list[str]]:
    s.w.rt.extensions["meterhttp.pins"] = BrokenPins()
    LEAK.text = f"GET http://meter/?page=getdata&devid=1728053249&devpass={PIN} failed"
    request = s.client.build_request(
        "GET", "/", params={"page": "getdata", "devid": "1728053249", "devpass": PIN}
    )
    return request, [PIN]


async def _native(s: Served) -> tuple[httpx.Request, list[str]]:
    token = s.w.token_a
    LEAK.text = f"history query failed; the request had Authorization: Bearer {token}"
    request = s.client.build_request(
        "GET", f"/api/v1/devices/{s.w.plug_a.id}/history", headers=s.w.auth()
    )
    return request, [token]


PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
CASES = {
    "native": (_native, None),  # the problem document, checked below
    "smartplug": (_smartplug, {"type": PROBLEM_TYPE, "title": "Internal Server Error",
                               "status": 500, "detail": "Internal Server Error"}),
    "powercontroller": (_powercontroller, {"message": "Internal Server Error"}),
    "multisocket": (_multisocket, {"statusCode": 500, "message": "Internal Server Error"}),
    "push3": (_push3, {"error": "Internal Server Error"}),
    "meterhttp": (_meterhttp, {"error": "Internal Server Error"}),
}  # fmt: skip


@pytest.mark.parametrize("face", CASES)
async def test_one_unexpected_error_is_one_error_record(
    served: Served, caplog: pytest.LogCaptureFixture, face: str
) -> None:
    prepare, body = CASES[face]
    request, secrets = await prepare(served)
    request.headers["X-Request-ID"] = f"fault-{face}"
    caplog.handler.addFilter(RequestIdFilter())  # as the server's own handler stamps records
    with caplog.at_level(logging.INFO):
        r = await served.client.send(request)
        await asyncio.sleep(0)  # (the server logs after the app returns)

    assert r.status_code == 500, r.text
    assert r.headers["x-request-id"] == f"fault-{face}"
    if body is None:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 500 and r.json()["request_id"] == f"fault-{face}"
    else:
        assert r.json() == body
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1, [(rec.name, rec.getMessage()) for rec in errors]
    (record,) = errors
    assert record.exc_info and record.exc_info[0] is Fault, "the traceback is in it"
    assert "Traceback" in caplog.text and "Fault" in caplog.text
    assert getattr(record, "request_id", None) == f"fault-{face}"
    logged = f"{caplog.text}\n{record.getMessage()}\n{record.exc_text}"
    assert [s for s in secrets if s in logged] == [], logged


async def test_a_fault_in_an_answer_under_way_is_logged_once_by_the_server(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that breaks after its first bytes: the connection is dropped (the client
    must not take a cut answer for a whole one) and the server's record is the one."""

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        raise Fault("the stream's source broke")

    async with on_uvicorn(Observe(stream, faces={}), monkeypatch) as port:
        with caplog.at_level(logging.INFO):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get("/api/v1/events")
            await asyncio.sleep(0)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1, [(rec.name, rec.getMessage()) for rec in errors]
    assert errors[0].exc_info and errors[0].exc_info[0] is Fault
