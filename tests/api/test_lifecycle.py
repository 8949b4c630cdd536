"""Command lifecycle edges and the simulated grid, through the native API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Action, CommandState, Switch
from switchgear.errors import InvalidCommand
from switchgear.links.memory import LinkFault
from switchgear.settings import Settings
from tests.conftest import World


async def test_an_unanswered_command_times_out_and_says_so(world: World) -> None:
    rt = world.rt
    rt.link.faults[world.plug_a.id] = LinkFault(lost=True)
    rec = await rt.engine.command(
        world.plug_a.account_id, world.plug_a.id, Switch(Action.ON, 0), timeout_s=0.05
    )
    assert rec.state is CommandState.TIMED_OUT
    r = await world.client.get(f"/api/v1/commands/{rec.id}", headers=world.auth())
    assert r.json()["state"] == "timed_out"
    rt.link.faults.clear()
    r = await world.client.get(f"/api/v1/devices/{world.plug_a.id}", headers=world.auth())
    assert r.json()["channels"][0]["on"] is False  # nothing half-applied


async def test_a_command_in_flight_reads_as_sent_then_as_its_outcome(world: World) -> None:
    rt, plug = world.rt, world.plug_a
    rt.link.faults[plug.id] = LinkFault(delay_s=0.05)  # the device answers a little later
    task = asyncio.create_task(rt.engine.command(plug.account_id, plug.id, Switch(Action.ON, 0)))
    await asyncio.sleep(0)  # the task runs up to the device's late answer
    (command_id,) = rt.engine._in_flight
    r = await world.client.get(f"/api/v1/commands/{command_id}", headers=world.auth())
    assert r.json()["state"] == "sent"
    rec = await task
    assert (rec.id, rec.state) == (command_id, CommandState.DONE)
    r = await world.client.get(f"/api/v1/commands/{command_id}", headers=world.auth())
    assert r.json()["state"] == "done"  # from the store: nothing is kept in memory after
    assert rt.engine._in_flight == {}


async def test_an_invalid_command_in_flight_leaves_no_trace(world: World) -> None:
    rt, plug = world.rt, world.plug_a
    rt.link.faults[plug.id] = LinkFault(delay_s=0.01)
    with pytest.raises(InvalidCommand):
        await rt.engine.command(plug.account_id, plug.id, Switch(Action.ON, 7))
    assert rt.engine._in_flight == {}


async def test_grid_frequency_and_voltage_reach_the_readings(world: World) -> None:
    r = await world.client.put(
        "/api/v1/sim/grid", json={"frequency_hz": 49.8, "voltage_v": 220}, headers=world.auth()
    )
    assert r.status_code == 200
    dev = (
        await world.client.get(f"/api/v1/devices/{world.plug_a.id}", headers=world.auth())
    ).json()
    assert dev["meters"][0]["frequency_hz"] == 49.8
    assert dev["meters"][0]["voltage_v"] == pytest.approx(220, rel=0.005)
    other = (
        await world.client.get(
            f"/api/v1/devices/{world.plug_b.id}", headers=world.auth(world.token_b)
        )
    ).json()
    assert other["meters"][0]["frequency_hz"] != 49.8  # another account's grid is its own
    bad = await world.client.put("/api/v1/sim/grid", json={"frequency_hz": 5}, headers=world.auth())
    assert bad.status_code == 400


async def test_clock_advance_needs_a_manual_clock() -> None:
    app = create_app(Settings(database_url="memory://", speed=1))
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        account = await rt.auth.create_account("c@example.com", "C", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 60.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                "/api/v1/sim/clock/advance",
                json={"seconds": 10},
                headers={"Authorization": f"Bearer {token}"},
            )
    assert r.status_code == 409 and r.json()["title"] == "Conflict"
