"""FFR groups and closed events survive a restart on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import StoreFactory

SECRET = "test-secret-key-of-at-least-32-bytes"


@asynccontextmanager
async def server(store: StoreFactory) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    app = create_app(Settings(database_url="memory://", speed=0, secret_key=SECRET), store())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app.state.runtime, client


async def test_groups_and_events_are_there_after_a_restart(make_store: StoreFactory) -> None:
    async with server(make_store) as (rt, client):
        account = await rt.auth.create_account("ffr@example.com", "FFR", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 86_400.0)
        auth = {"Authorization": f"Bearer {token}"}
        device = await rt.add_device(
            Device(0, account.id, "PC-DURABLE0001-001", "power-controller-v10", "heater", 0.0)
        )
        body: dict[str, Any] = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 1,
                                "device_ids": [device.id]}  # fmt: skip
        group = (await client.post("/api/v1/ffr/groups", json=body, headers=auth)).json()
        await client.put("/api/v1/sim/grid", json={"frequency_hz": 59.7, "duration_s": 5},
                         headers=auth)  # fmt: skip
        await client.post("/api/v1/sim/clock/advance", json={"seconds": 901}, headers=auth)
        events = (await client.get("/api/v1/ffr/events", headers=auth)).json()
        report = (await client.get(f"/api/v1/ffr/events/{events[0]['id']}", headers=auth)).json()
        csv = (await client.get(f"/api/v1/ffr/events/{events[0]['id']}/evidence.csv",
                                headers=auth)).text  # fmt: skip
    async with server(make_store) as (rt, client):
        get: Callable[[str], Any] = lambda url: client.get(url, headers=auth)  # noqa: E731
        again = (await get(f"/api/v1/ffr/groups/{group['id']}")).json()
        assert (again["name"], again["devices"]) == ("g", [device.id])
        assert (await get("/api/v1/ffr/events")).json() == events
        assert (await get(f"/api/v1/ffr/events/{events[0]['id']}")).json() == report
        assert (await get(f"/api/v1/ffr/events/{events[0]['id']}/evidence.csv")).text == csv
        # a device stays in its group: a second group may not take it
        other = await rt.add_device(
            Device(0, account.id, "PC-DURABLE0002-001", "power-controller-v10", "heater", 0.0)
        )
        body = {**body, "name": "second", "device_ids": [device.id, other.id]}
        r = await client.post("/api/v1/ffr/groups", json=body, headers=auth)
        assert r.json()["refused"][0]["reason"] == f"already in FFR group {group['id']}"
        assert r.json()["id"] == group["id"] + 1
