"""Readiness as a load balancer sees it, and log lines as a log shipper reads them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from switchgear.app import create_app
from switchgear.core.model import Json
from switchgear.logs import JsonFormatter, RequestIdFilter
from switchgear.settings import Settings
from switchgear.storage.memory import MemoryStore
from tests.conftest import World
from tests.e2e.proc import free_port

SECRET = "test-secret-key-of-at-least-32-bytes"


class FlakyStore(MemoryStore):
    """A store whose database can be taken away (a PostgreSQL restart, a full disk)."""

    down = False

    async def meta(self, key: str) -> Json | None:
        if self.down:
            raise ConnectionRefusedError("connection refused to 10.0.0.5:5432")
        return await super().meta(key)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[httpx.AsyncClient, FlakyStore]]:
    store = FlakyStore()
    app = create_app(Settings(database_url="memory://", speed=0, secret_key=SECRET), store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, store


async def test_ready_while_the_database_answers_and_not_after(
    flaky: tuple[httpx.AsyncClient, FlakyStore],
) -> None:
    client, store = flaky
    assert (await client.get("/readyz")).status_code == 200
    store.down = True
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"database": "failed"}}
    assert "10.0.0.5" not in r.text  # the reason goes to the log, not to the caller
    assert (await client.get("/healthz")).status_code == 200  # alive all the same
    store.down = False
    assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_while_the_broker_is_unreachable() -> None:
    settings = Settings(
        database_url="memory://", speed=0, secret_key=SECRET,
        link=f"mqtt://127.0.0.1:{free_port()}",  # nothing listens there
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "ok", "broker": "failed"}


@pytest.fixture
def json_access_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("switchgear.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield out
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


async def test_json_log_lines_carry_the_request_id_the_answer_returns(
    world: World, json_access_log: io.StringIO
) -> None:
    r = await world.client.get("/api/v1/devices", headers=world.auth())
    assert r.status_code == 200
    lines = [json.loads(line) for line in json_access_log.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == r.headers["x-request-id"]
    assert line["logger"] == "switchgear.access" and line["level"] == "info"
    assert line["message"].startswith("GET /api/v1/devices 200 ")
    assert line["time"].endswith("Z")
