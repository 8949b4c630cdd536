"""A stranger guessing a meter's PIN cannot lock its owner out of the meter's local API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.dialects.meterhttp.pins import PER_ADDRESS, PER_METER, WINDOW_S
from switchgear.runtime import Runtime
from switchgear.settings import Settings

DEVID, PIN = "1728053249", "012345"


@dataclass
class Lan:
    rt: Runtime
    at: Callable[[str], httpx.AsyncClient]  # a client from this address
    token: str

    async def get(self, address: str, devpass: str, devid: str = DEVID) -> httpx.Response:
        params = {"page": "getdata", "devid": devid, "devpass": devpass}
        return await self.at(address).get("/", params=params)

    async def advance(self, seconds: float) -> None:
        r = await self.at("127.0.0.1").post(
            "/api/v1/sim/clock/advance", json={"seconds": seconds},
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        assert r.status_code == 200, r.text


@pytest.fixture
async def lan() -> AsyncIterator[Lan]:
    app = create_app(Settings(database_url="memory://", speed=0))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        owner = await rt.auth.create_account("owner@example.com", "Owner", "a long password")
        _, token = await rt.auth.issue(owner.id, KIND_NATIVE, 3600.0)
        await rt.add_device(
            Device(0, owner.id, DEVID, "D101", "meter", rt.clock.now(), attrs={"devpass": PIN})
        )
        clients: dict[str, httpx.AsyncClient] = {}

        def at(address: str) -> httpx.AsyncClient:
            if address not in clients:
                transport = httpx.ASGITransport(app=app, client=(address, 40000))
                clients[address] = httpx.AsyncClient(transport=transport, base_url="http://m")
            return clients[address]

        yield Lan(rt, at, token)
        for client in clients.values():
            await client.aclose()


async def test_a_strangers_wrong_pin_does_not_spend_the_owners_request(lan: Lan) -> None:
    owner, stranger = "192.168.1.10", "192.168.1.66"
    assert (await lan.get(owner, PIN)).status_code == 200
    await lan.advance(60)
    wrong = await lan.get(stranger, "999999")  # just before the owner's next poll
    assert wrong.status_code == 403 and wrong.json() == {"error": "access denied"}
    r = await lan.get(owner, PIN)
    assert r.status_code == 200 and r.json()["devid"] == DEVID
    assert (await lan.get(owner, PIN)).status_code == 429  # the meter's own slot still holds


async def test_failed_pins_are_counted_per_address(lan: Lan) -> None:
    owner, stranger = "192.168.1.10", "192.168.1.66"
    for guess in range(PER_ADDRESS):
        assert (await lan.get(stranger, f"{guess:06d}")).status_code == 403
    # out of guesses: refused before the PIN is looked at, the right one included
    assert (await lan.get(stranger, PIN)).json() == {"error": "too many requests"}
    assert (await lan.get(stranger, PIN)).status_code == 429
    assert (await lan.get(owner, PIN)).status_code == 200  # the owner is not touched
    await lan.advance(WINDOW_S)
    assert (await lan.get(stranger, PIN)).status_code == 200  # the window passed


async def test_a_guess_spread_over_many_addresses_leaves_the_owners_poller_working(
    lan: Lan,
) -> None:
    owner = "192.168.1.10"
    assert (await lan.get(owner, PIN)).status_code == 200
    for n in range(PER_METER):
        assert (await lan.get(f"10.0.{n}.1", "999999")).status_code == 403
    # the meter is under attack: new addresses wait, even with the right PIN ...
    assert (await lan.get("10.9.9.9", PIN)).status_code == 429
    assert (await lan.get("10.9.9.9", "000000")).status_code == 429
    # ... and the address that has shown the right PIN keeps its one request a minute
    for _ in range(3):
        await lan.advance(60)
        assert (await lan.get(owner, PIN)).status_code == 200
    # unknown devids are counted like wrong PINs (the same answer, the same budget)
    for _ in range(PER_ADDRESS):
        assert (await lan.get("10.7.7.7", PIN, devid="1111111111")).status_code == 403
    assert (await lan.get("10.7.7.7", PIN)).status_code == 429


async def test_behind_a_trusted_proxy_failed_pins_count_per_forwarded_client() -> None:
    proxy, owner, stranger = "10.1.1.1", "192.168.1.10", "192.168.1.66"
    settings = Settings(database_url="memory://", speed=0, trusted_proxies=[proxy])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("owner@example.com", "Owner", "a long password")
        await rt.add_device(
            Device(0, account.id, DEVID, "D101", "meter", rt.clock.now(), attrs={"devpass": PIN})
        )
        transport = httpx.ASGITransport(app=app, client=(proxy, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as via_proxy:

            async def get(client: str, devpass: str) -> httpx.Response:
                params = {"page": "getdata", "devid": DEVID, "devpass": devpass}
                headers = {"X-Forwarded-For": client}
                return await via_proxy.get("/", params=params, headers=headers)

            for guess in range(PER_ADDRESS):
                assert (await get(stranger, f"{guess:06d}")).status_code == 403
            assert (await get(stranger, PIN)).status_code == 429  # the stranger is out
            r = await get(owner, PIN)  # the owner, through the same proxy, is not
            assert r.status_code == 200 and r.json()["devid"] == DEVID
