"""A command waiting for an offline Push3 gateway survives a server restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_PUSH3_KEY
from switchgear.core.model import Device
from switchgear.core.ports import SimAction
from switchgear.dialects.push3 import outbox
from switchgear.runtime import Runtime
from switchgear.settings import Settings

SECRET = "test-secret-key-of-at-least-32-bytes"
ADDRESS, GATEWAY = "000350000900", "4016A0B1C2D3"
HOLD = {"command": "SetRelay", "target": "meter", "target_id": ADDRESS,
        "params": {"relay": "Relay_2", "status": "close", "duration": 0}}  # fmt: skip


@asynccontextmanager
async def server(db: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    settings = Settings(database_url=f"sqlite:///{db}", speed=0, secret_key=SECRET)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app.state.runtime, client


async def _add(rt: Runtime, account_id: int, serial: str, model: str, **attrs: str) -> Device:
    return await rt.add_device(
        Device(0, account_id, serial, model, serial, rt.clock.now(), attrs=attrs)
    )


@pytest.mark.parametrize("kept", ["a row each", "one row for all (a version before)"])
async def test_a_waiting_command_survives_a_restart_and_runs_when_the_gateway_is_back(
    tmp_path: Path, kept: str
) -> None:
    db = tmp_path / "push3.db"
    async with server(db) as (rt, client):
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        gateway = await _add(rt, account.id, GATEWAY, "PUSH3")
        meter = await _add(rt, account.id, ADDRESS, "OMNIMETER-V4", gateway=GATEWAY)
        _, key = await rt.auth.issue(account.id, KIND_PUSH3_KEY, None)
        await rt.simulate(account.id, gateway.id, SimAction("online", online=False))
        r = await client.post(f"/sendCommand?key={key}", json=HOLD)
        assert r.status_code == 200, r.text
        await rt.advance(30)
        assert rt.engine.shadow(meter.id).channels[1].on is False
        if kept != "a row each":  # as an upgrade finds it
            [(row, entry)] = (await rt.store.metas(outbox.PREFIX)).items()
            assert await rt.store.take_meta(row)
            rt.journal.put_meta(outbox.META_KEY, {str(gateway.id): [entry]})
    async with server(db) as (rt, client):  # the restart: the gateway boots and reports
        assert rt.extensions["push3.outbox"].waiting  # still waiting on the gateway's stream
        assert await rt.store.meta(outbox.META_KEY) is None  # (an upgrade's: a row each now)
        for _ in range(10):  # it polls within a second, takes the command, runs it
            await rt.advance(1)
            await asyncio.sleep(0.01)  # the hand-over runs in its own task
        assert rt.engine.shadow(meter.id).channels[1].on is True
        assert rt.extensions["push3.outbox"].waiting == {}
