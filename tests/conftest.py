"""Shared fixtures: a running app on a manual clock with two accounts and their devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.runtime import Runtime
from switchgear.settings import Settings


@dataclass
class World:
    """Two accounts (a, b), a native token each, a plug and a strip for a, a plug for b."""

    rt: Runtime
    client: httpx.AsyncClient
    token_a: str
    token_b: str
    plug_a: Device
    strip_a: Device
    plug_b: Device

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token_a}"}


async def add(rt: Runtime, account_id: int, serial: str, model: str) -> Device:
    return await rt.add_device(
        Device(
            id=0,
            account_id=account_id,
            serial=serial,
            model=model,
            name=serial,
            created_at=rt.clock.now(),
        )
    )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings(
        database_url="memory://", speed=0, secret_key="test-secret-key-of-at-least-32-bytes"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        a = await rt.auth.create_account("a@example.com", "Account A", "correct horse A")
        b = await rt.auth.create_account("b@example.com", "Account B", "correct horse B")
        _, token_a = await rt.auth.issue(a.id, KIND_NATIVE, 3600.0)
        _, token_b = await rt.auth.issue(b.id, KIND_NATIVE, 3600.0)
        plug_a = await add(rt, a.id, "SPG-A-1", "SHPLG-1")
        strip_a = await add(rt, a.id, "LGM-A-1", "LG-MULTI-4")
        plug_b = await add(rt, b.id, "SPG-B-1", "SHPLG-1")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield World(rt, client, token_a, token_b, plug_a, strip_a, plug_b)
