"""A fault no native handler expected answers a 500 problem document with the request id;
the traceback goes to the log, never to the client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from switchgear.app import create_app
from switchgear.core.model import HistoryPage
from switchgear.settings import Settings
from switchgear.storage import MemoryStore
from tests.conftest import World, world_on


class Fault(RuntimeError):
    """A bug somewhere below the native API."""


class BrokenHistory(MemoryStore):
    """A store whose history read fails as no handler expects."""

    async def history(
        self,
        device_ids: Sequence[int] | None,
        start: float,
        end: float,
        cursor: str | None = None,
        limit: int = 500,
        account_id: int | None = None,
    ) -> HistoryPage:
        raise Fault("secret-ish internals: store exploded")


@pytest.fixture
async def broken() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    settings = Settings(
        database_url="memory://", speed=0, secret_key="test-secret-key-of-at-least-32-bytes"
    )
    app = create_app(settings, store=BrokenHistory())
    async with app.router.lifespan_context(app), world_on(app) as w:
        # the server's answer, not the app's exception re-raised for the server to log
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield w, c


async def test_native_500_is_a_problem_document_with_the_request_id(
    broken: tuple[World, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    w, client = broken
    with caplog.at_level(logging.ERROR):
        r = await client.get(
            f"/api/v1/devices/{w.plug_a.id}/history",
            headers={**w.auth(), "X-Request-ID": "req-fault-1"},
        )
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "req-fault-1"
    assert r.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The server met an unexpected error; quote the request id to report it.",
        "request_id": "req-fault-1",
    }
    assert "exploded" not in r.text and "Traceback" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info and rec.exc_info[0] is Fault]
    assert logged, "the traceback is logged"
