"""A fault no handler expected still answers 500 in the face's own error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from switchgear.core.model import Device, DeviceState
from switchgear.dialects.meterhttp.pins import PinGuard
from switchgear.dialects.multisocket.gate import Quota
from switchgear.dialects.powercontroller.ids import Index
from switchgear.dialects.push3.channels import Hub
from switchgear.dialects.render import ShadowCache
from switchgear.runtime import Runtime
from tests.conftest import World

PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"


class Fault(RuntimeError):
    """A bug somewhere below the face."""


class BrokenCache(ShadowCache[bytes]):
    def get(self, device_id: int, state: DeviceState) -> bytes:
        raise Fault("render failed")


class BrokenIndex(Index):
    def lookup(self, rt: Runtime, account_id: int, api_id: str) -> Device:
        raise Fault("index failed")


class BrokenQuota(Quota):
    def __init__(self) -> None:
        pass

    async def spend(self, account_id: int) -> None:
        raise Fault("counter store failed")


class BrokenHub(Hub):
    def __init__(self) -> None:
        pass

    def get(self, channel_id: str, account_id: int | None) -> Any:
        raise Fault("hub failed")


class BrokenPins(PinGuard):
    def __init__(self) -> None:
        pass

    async def reserve(self, address: str, devid: str) -> Any:
        raise Fault("counter store failed")


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the server's 500 answer instead of the app's exception."""
    app = world.client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _credential(w: World, kind: str) -> dict[str, Any]:
    r = await w.client.post("/api/v1/credentials", json={"kind": kind}, headers=w.auth())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_smartplug(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/auth/login", json={
        "client_id": "mclimate", "client_secret": "mclimate_core",
        "username": "a@example.com", "password": "correct horse A"})  # fmt: skip
    token = r.json()["auth"]["access_token"]
    world.rt.extensions["smartplug.fetch"] = BrokenCache(lambda s: b"")
    r = await client.post("/provider/fetch", json={"serial_number": "SPG-A-1"},
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json() == {"type": PROBLEM_TYPE, "title": "Internal Server Error", "status": 500,
                        "detail": "Internal Server Error"}  # fmt: skip


async def test_powercontroller(world: World, client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/signin", json={"user": {"email": "a@example.com", "password": "correct horse A"}}
    )
    world.rt.extensions["powercontroller.ids"] = BrokenIndex()
    r = await client.get(
        "/v1/devices/abc", headers={"Authorization": f"Bearer {r.json()['token']}"}
    )
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})


async def test_multisocket(world: World, client: httpx.AsyncClient) -> None:
    key = (await _credential(world, "multisocket.key"))["subscription_key"]
    world.rt.extensions["multisocket.quota"] = BrokenQuota()
    url = ("/multioutlet/plug/energy/addressLocation/plants/"
           "c81a6af1-4087-4a83-9716-d452c6fda079/parameter/id/value/x")  # fmt: skip
    r = await client.get(url, headers={"Ocp-Apim-Subscription-Key": key})
    assert (r.status_code, r.json()) == (500, {"statusCode": 500,
                                               "message": "Internal Server Error"})  # fmt: skip
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("path", "setup", "body"),
    [
        (
            "/sub/response_abcdefghijklmnop",
            lambda rt: BrokenHub(),
            {"error": "Internal Server Error"},
        ),
        (
            "/?page=getdata&devid=1728053249&devpass=012345",
            lambda rt: BrokenPins(),
            {"error": "Internal Server Error"},
        ),
    ],
    ids=["push3", "meterhttp"],
)
async def test_push3_and_meterhttp(
    world: World, client: httpx.AsyncClient, path: str, setup: Callable[[Runtime], Any],
    body: dict[str, str],
) -> None:  # fmt: skip
    name = "push3.channels" if path.startswith("/sub/") else "meterhttp.pins"
    world.rt.extensions[name] = setup(world.rt)
    r = await client.get(path)
    assert (r.status_code, r.json()) == (500, body)
