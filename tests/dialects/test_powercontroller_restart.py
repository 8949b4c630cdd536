"""A kept ?async=true request survives a restart and runs once the controller answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from switchgear.app import create_app
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.conftest import add

KEY = "test-secret-key-of-at-least-32-bytes"


@asynccontextmanager
async def server(db: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    settings = Settings(database_url=f"sqlite:///{db}", speed=0, secret_key=KEY)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app.state.runtime, client


async def test_a_kept_request_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "pc.db"
    async with server(db) as (rt, client):
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        pc = await add(rt, account.id, "PC-RESTARTME01-001", "power-controller-v10")
        signin = {"user": {"email": "a@example.com", "password": "correct horse A"}}
        token = (await client.post("/v1/signin", json=signin)).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        pc_id = (await client.get("/v1/devices", headers=h)).json()["devices"][0]["device"]["id"]
        await rt.simulate(account.id, pc.id, _offline())
        r = await client.post(f"/v1/devices/{pc_id}/command?async=true",
                              json={"command": {"name": "off"}}, headers=h)  # fmt: skip
        assert r.status_code == 202
        for _ in range(50):
            if rt.extensions["powercontroller.pending"].requests:
                break
            await _tick()
        await rt.journal.flush()
        assert rt.engine.shadow(pc.id).channels[0].on is True
    async with server(db) as (rt, client):  # the restart: every controller boots, online
        assert rt.engine.shadow(pc.id).channels[0].on is True
        await rt.advance(5)
        kept = rt.extensions["powercontroller.pending"].requests
        for _ in range(50):
            if not rt.engine.shadow(pc.id).channels[0].on and not kept:
                break
            await _tick()
        assert rt.engine.shadow(pc.id).channels[0].on is False
        assert rt.extensions["powercontroller.pending"].requests == {}


def _offline() -> object:
    from switchgear.core.ports import SimAction

    return SimAction("online", online=False)


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)
