"""FFR events as they run: a restart, a heater's own thermostat, and leaving a group."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.ffr import BY_ID
from switchgear.core.model import FirmwareCommand
from switchgear.core.ports import Batch, SimAction
from switchgear.ffr.service import FfrService
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import SqlStore
from tests.conftest import World, add

KEY = "test-secret-key-of-at-least-32-bytes"
PC = "power-controller-v10"
TRIP = round(10 / 60, 6)  # ten grid cycles at 60 Hz


@asynccontextmanager
async def server(db: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    app = create_app(Settings(database_url=f"sqlite:///{db}", speed=0, secret_key=KEY))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app.state.runtime, client


async def heaters(rt: Runtime, account_id: int, n: int, load: dict[str, Any]) -> list[int]:
    ids = []
    for k in range(n):
        d = await add(rt, account_id, f"PC-DURABLE{k:04d}-001", PC)
        await rt.simulate(account_id, d.id, SimAction("load", channel=0, load=load))
        ids.append(d.id)
    return ids


def rows(text: str) -> dict[float, dict[str, str]]:
    """Evidence rows by their offset from the crossing (s, one decimal)."""
    return {round(k * 0.1 - 10, 1): r for k, r in enumerate(csv.DictReader(io.StringIO(text)))}


async def test_an_event_in_progress_resumes_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "ffr.db"
    async with server(db) as (rt, _):
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        ids = await heaters(rt, account.id, 2, {"watts": 4500})
        svc = FfrService.of(rt)
        g = await svc.create_group(account.id, "g", BY_ID["ercot-ffr"], 9.0, ids)
        crossed = rt.clock.now()
        await rt.set_grid(account.id, 59.8, None, duration_s=60)
        await rt.advance(2)
        await svc.settled()
        event_id = svc.open[g.id].id
        assert event_id == 1
    # down for 28 s: the manual clock resumes from the database's, which the wall clock
    # would have carried on meanwhile
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    await store.commit(Batch(meta={"clock": crossed + 30}))
    await store.close()
    async with server(db) as (rt, client):
        assert rt.clock.now() == crossed + 30
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        auth = {"Authorization": f"Bearer {token}"}
        r = await client.get(f"/api/v1/ffr/events?group={g.id}", headers=auth)
        assert [(e["id"], e.get("open")) for e in r.json()] == [(1, True)]  # resumed
        await rt.advance(870.1)  # across the end of the 15-minute window
        r = await client.get(f"/api/v1/ffr/events/{event_id}", headers=auth)
        ev = r.json()
        assert "open" not in ev
        # the grid was back at nominal when the server came back: the heaters were on again,
        # at an instant nobody saw; only what was observed counts as support
        assert [(d["response_s"], d["support_s"], d["compliant"]) for d in ev["devices"]] == [
            (TRIP, round(2 - TRIP, 6), False)
        ] * 2
        assert ev["delivered_kw"] == 9.0
        assert ev["reasons"] == [
            f"device {i} support cut short: held 1.833 s, 29.833 s required" for i in ids
        ]
        assert ev["evidence"]["unobserved"] == [
            {"from": _iso(crossed + 2), "to": _iso(crossed + 30)}
        ]
        assert ev["evidence"]["closed_while_unobserved"] == ids
        r = await client.get(f"/api/v1/ffr/events/{event_id}/evidence.csv", headers=auth)
        at = rows(r.text)
        assert len(at) == 9101
        assert [at[t]["observed"] for t in (1.9, 2.0, 29.9, 30.0)] == [
            "true", "false", "false", "true"
        ]  # fmt: skip
        assert sum(1 for x in at.values() if x["observed"] == "false") == 280
        assert (at[1.9]["frequency_hz"], at[1.9]["active_power_kw"]) == ("59.800", "0.000")
        assert (at[30.0]["frequency_hz"], at[30.0]["active_power_kw"]) == ("60.000", "9.000")
    async with server(db) as (rt, _):  # and the closed report stays closed
        svc = FfrService.of(rt)
        assert svc.open == {}
        assert (await svc.event(account.id, event_id)).report["delivered_kw"] == 9.0


def _iso(t: float) -> str:
    from switchgear.api.schemas import iso

    return iso(t)


async def test_a_thermostat_switching_inside_the_window_is_in_the_evidence(
    world: World,
) -> None:
    w = world
    [h] = await heaters(w.rt, 1, 1, {"type": "thermostat", "rated_watts": 4500,
                                     "temperature_c": 59.9})  # fmt: skip
    svc = FfrService.of(w.rt)
    await svc.create_group(1, "g", BY_ID["ercot-ffr"], 4.5, [h])
    load = w.rt.link.fleet.get(h).points[0].load  # type: ignore[union-attr]
    crossed = w.rt.clock.now()
    # the voltage up to 245 V with the dip (the element is rated at 240 V): its power is above the
    # rating whatever the voltage's wobble at the instant the test starts
    await w.rt.set_grid(1, 59.8, 245.0, duration_s=60)
    at_step = load.power(crossed)  # the step's voltage: the element's power follows
    live: dict[float, float] = {}
    for k in range(1, 1000):  # the twin itself, every 100 ms for 100 s
        await w.rt.advance(0.1)
        live[round(k * 0.1, 1)] = round(load.power(w.rt.clock.now()) / 1000, 3)
    await w.rt.advance(800.1)
    [summary] = await svc.events(1, None)
    ev = await svc.event(1, int(summary["id"]))  # type: ignore[call-overload]
    assert ev.report["delivered_kw"] == round(at_step / 1000, 3) != 4.5
    r = await w.client.get(f"/api/v1/ffr/events/{ev.id}/evidence.csv", headers=w.auth())
    evidence = {t: float(x["active_power_kw"]) for t, x in rows(r.text).items()}
    # every 100 ms, exactly the twin's power (but at the grid's return, 60.0: a row at a
    # change's instant shows the new value, the summed-up sample time a hair before it)
    del live[60.0]
    assert {t: evidence[t] for t in live} == live
    assert evidence[60.0] == evidence[60.1] > 4.4
    # back on after the dip, the element heats the tank to its setpoint and stops: the
    # evidence drops to 0 at that instant, about 19 s later
    off = min(t for t in live if t > 61 and live[t] == 0.0)
    assert 75 < off < 85 and evidence[round(off - 0.1, 1)] > 4.4 and evidence[off] == 0.0


async def test_leaving_a_group_restores_the_previous_ffr_settings(world: World) -> None:
    w = world
    a, b = await heaters(w.rt, 1, 2, {"watts": 4500})
    mine = {"enable": True, "tripThreshold": 59.5, "returnThreshold": 59.6, "periods": 20,
            "delay": 5, "maxBackOff": 3}  # fmt: skip
    await w.rt.engine.command(1, a, FirmwareCommand("pc.config", {"ffr": mine}))
    body = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 9, "device_ids": [a, b]}
    r = await w.client.post("/api/v1/ffr/groups", headers=w.auth(), json=body)
    gid = r.json()["id"]
    assert "previous" not in r.json()

    def ffr(i: int) -> Any:
        return w.rt.reading(i).extra["config"]["ffr"]  # type: ignore[index]

    assert ffr(a)["tripThreshold"] == 59.85
    await w.rt.set_grid(1, 59.8, None, duration_s=10)
    r = await w.client.delete(f"/api/v1/ffr/groups/{gid}/devices/{a}", headers=w.auth())
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "event 1 in progress" in r.json()["detail"]
    r = await w.client.delete(f"/api/v1/ffr/groups/{gid}", headers=w.auth())
    assert r.status_code == 409
    await w.rt.advance(900)
    r = await w.client.delete(f"/api/v1/ffr/groups/{gid}/devices/{a}", headers=w.auth())
    assert r.json() == {"device_id": a, "restored": True, "reason": None}
    assert ffr(a) == {**{k: v for k, v in mine.items() if k != "enable"}, "enabled": True}
    r = await w.client.get(f"/api/v1/ffr/groups/{gid}", headers=w.auth())
    assert r.json()["devices"] == [b]
    r = await w.client.delete(f"/api/v1/ffr/groups/{gid}", headers=w.auth(w.token_b))
    assert r.status_code == 404  # not theirs
    r = await w.client.delete(f"/api/v1/ffr/groups/{gid}", headers=w.auth())
    assert r.json() == {"id": gid, "restored": [b], "not_restored": []}
    assert ffr(b)["enabled"] is False and ffr(b)["tripThreshold"] == 59.7  # the default
    assert (await w.client.get(f"/api/v1/ffr/groups/{gid}", headers=w.auth())).status_code == 404
    r = await w.client.get("/api/v1/ffr/events", headers=w.auth())
    assert [e["id"] for e in r.json()] == [1]  # its events stay
    body = {"name": "again", "programme": "ercot-ffr", "contracted_kw": 4.5, "device_ids": [a]}
    r = await w.client.post("/api/v1/ffr/groups", headers=w.auth(), json=body)
    assert r.json()["devices"] == [a]  # free to join another group
