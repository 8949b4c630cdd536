"""FFR groups and closed events survive a restart on every store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.ffr import BY_ID
from switchgear.core.model import Device
from switchgear.core.ports import Batch
from switchgear.ffr.model import Group
from switchgear.ffr.service import GROUPS_KEY, FfrService
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


async def test_groups_kept_in_one_row_are_moved_to_a_row_each_with_nothing_lost(
    make_store: StoreFactory,
) -> None:
    ercot, nordic = BY_ID["ercot-ffr"], BY_ID["nordic-ffr-49.7"]
    before = {"enabled": False, "tripThreshold": 49.5, "periods": 5}
    groups = [
        Group(1, 1, "north", ercot, 9.0, [11, 12], [], 10.0, {11: before}),
        Group(3, 2, "south", nordic, 2.5, [13], [{"device_id": 14, "reason": "x"}], 20.0),
    ]
    first = make_store()
    await first.open()
    await first.commit(Batch(meta={GROUPS_KEY: [g.to_json() for g in groups]}))
    await first.close()
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET)
    workers = [await Runtime.start(settings, make_store()) for _ in range(2)]
    try:  # two workers of the new version start together on the old row
        services = await asyncio.gather(*(FfrService.start(rt) for rt in workers))
        for svc in services:
            assert [g.to_json() for g in svc.groups.values()] == [g.to_json() for g in groups]
            assert svc.member == {11: 1, 12: 1, 13: 3}
        store = workers[0].store
        assert await store.meta(GROUPS_KEY) is None
        rows = await store.metas("ffr:group/")
        assert rows == {"ffr:group/1": groups[0].to_json(), "ffr:group/3": groups[1].to_json()}
        assert await store.metas("ffr:member/") == {
            "ffr:member/11": 1,
            "ffr:member/12": 1,
            "ffr:member/13": 3,
        }
    finally:
        for rt in workers:
            await rt.stop()
    rt = await Runtime.start(settings, make_store())  # and a restart finds them all again
    try:
        svc = await FfrService.start(rt)
        assert [g.to_json() for g in svc.groups.values()] == [g.to_json() for g in groups]
    finally:
        await rt.stop()
