"""Shared fixtures: a running app on a manual clock with two accounts and their devices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import pg_database  # noqa: F401 (a fixture: tests/deployments.py)


async def _settled() -> None:
    """In-process devices are on line as soon as they are added."""


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
    shape: str = "embedded"  # or "scale-out" (tests/deployments.py)
    # waits until every device added so far is on line (fleet devices connect over the broker)
    settle: Callable[[], Awaitable[None]] = _settled

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


@asynccontextmanager
async def world_on(
    app: FastAPI, shape: str = "embedded", settle: Callable[[], Awaitable[None]] = _settled
) -> AsyncIterator[World]:
    """The two accounts and their devices on a started app, and a client for it."""
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
        w = World(rt, client, token_a, token_b, plug_a, strip_a, plug_b, shape, settle)
        await w.settle()
        yield w


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings(
        database_url="memory://", speed=0, secret_key="test-secret-key-of-at-least-32-bytes"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), world_on(app) as w:
        yield w
