"""Polling a real smart-MAIC meter: switchgear B polls switchgear A's meter over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.e2e.proc import Demo, start_demo

pytestmark = pytest.mark.e2e


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait for real network I/O between the two servers (bounded)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.fixture
async def meter_server(tmp_path: Path) -> AsyncIterator[Demo]:
    demo = start_demo(tmp_path, tmp_path / "a.db")
    try:
        yield demo
    finally:
        demo.stop()


async def test_a_polled_meter_reports_switches_and_backs_off(meter_server: Demo) -> None:
    a = meter_server.credentials
    meter = next(m for m in a["meterhttp"]["meters"] if m["phases"] == 3)
    a_headers = {"Authorization": f"Bearer {a['account']['token']}"}
    a_client = httpx.AsyncClient(base_url=a["base_url"], headers=a_headers, timeout=10)

    async def advance_a(seconds: float) -> None:
        r = await a_client.post("/api/v1/sim/clock/advance", json={"seconds": seconds})
        assert r.status_code == 200

    async def a_relay() -> bool:
        devices = (await a_client.get("/api/v1/devices", params={"family": "meter"})).json()
        return bool(next(d for d in devices if d["serial"] == meter["devid"])["channels"][0]["on"])

    # the meter runs on this machine: loopback must be allowed explicitly (never by default)
    app = create_app(Settings(database_url="memory://", speed=0, meter_networks=["127.0.0.0/8"]))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("poller@example.com", "P", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b", headers={"Authorization": f"Bearer {token}"}
        ) as b:
            r = await b.post("/api/v1/meters", json={
                "url": a["base_url"] + "/", "devid": meter["devid"],
                "devpass": meter["devpass"], "model": "D103"})  # fmt: skip
            assert r.status_code == 201, r.text
            did = r.json()["id"]

            async def device() -> dict[str, Any]:
                return dict((await b.get(f"/api/v1/devices/{did}")).json())

            async def online() -> bool:
                return bool((await device())["online"])

            await until(online)  # the first poll happens at once
            dev = await device()
            assert len(dev["meters"]) == 3 and dev["meters"][0]["voltage_v"] > 100
            hist = (await b.get(f"/api/v1/devices/{did}/history")).json()["statuses"]
            assert [s["reason"] for s in hist if s["kind"] == "update"] == ["poll"]

            # switch through the engine: the command waits for the meter's next slot (6 s)
            before = await a_relay()
            await advance_a(6)
            action = "off" if before else "on"
            switching = asyncio.create_task(
                b.post(f"/api/v1/devices/{did}/channels/0/switch", json={"action": action})
            )
            await asyncio.sleep(0)
            assert not switching.done()
            await b.post("/api/v1/sim/clock/advance", json={"seconds": 6}, headers={})
            r = await asyncio.wait_for(switching, 10)
            assert r.status_code == 200 and r.json()["state"] == "done", r.text
            assert await a_relay() is (not before)
            assert (await device())["channels"][0]["on"] is (not before)

            # polling faster than A allows: A answers 429, B doubles its interval
            poller = rt.poller.meter(did)
            await b.post("/api/v1/sim/clock/advance", json={"seconds": 6})

            async def backed_off() -> bool:
                return poller.backoff == 2.0

            await until(backed_off)
            assert poller.next_slot == pytest.approx(rt.clock.now() + 12)
            await advance_a(12)
            await b.post("/api/v1/sim/clock/advance", json={"seconds": 12})

            async def recovered() -> bool:
                return poller.backoff == 1.0

            await until(recovered)
            polls = [
                s
                for s in (await b.get(f"/api/v1/devices/{did}/history")).json()["statuses"]
                if s["reason"] == "poll"
            ]
            assert len(polls) == 2  # the 429 left no reading behind

            # the meter goes away: B marks it offline
            meter_server.stop()
            await b.post("/api/v1/sim/clock/advance", json={"seconds": 6})

            async def offline() -> bool:
                return not await online()

            await until(offline)
    await a_client.aclose()


async def test_adding_a_meter_validates_its_fields() -> None:
    app = create_app(Settings(database_url="memory://", speed=0))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("v@example.com", "V", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://b",
            headers={"Authorization": f"Bearer {token}"},
        ) as b:  # fmt: skip
            good = {"url": "http://127.0.0.1:1/", "devid": "1728053249", "devpass": "012345"}
            for field, bad in (("devid", "17280"), ("devpass", "12ab56"), ("url", "ftp://x"),
                               ("model", "D999")):  # fmt: skip
                r = await b.post("/api/v1/meters", json={**good, field: bad})
                assert r.status_code == 400 and field in r.text
            assert (await b.get("/api/v1/devices")).json() == []


async def test_a_meter_on_loopback_is_refused_by_default(meter_server: Demo) -> None:
    a = meter_server.credentials
    meter = a["meterhttp"]["meters"][0]
    app = create_app(Settings(database_url="memory://", speed=0))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("d@example.com", "D", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://b",
            headers={"Authorization": f"Bearer {token}"},
        ) as b:  # fmt: skip
            r = await b.post("/api/v1/meters", json={
                "url": a["base_url"] + "/", "devid": meter["devid"],
                "devpass": meter["devpass"], "model": "D101"})  # fmt: skip
            assert r.status_code == 400 and r.json()["field"] == "url", r.text
            assert (await b.get("/api/v1/devices")).json() == []
