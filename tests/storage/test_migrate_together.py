"""Servers started at once on one PostgreSQL database (several hosts, a deployment's
rollout) migrate it once: the others wait for it and find it done, none fails."""

from __future__ import annotations

import asyncio

import pytest

from switchgear.storage import SqlStore
from tests.storage.conftest import empty_schema

pytestmark = pytest.mark.postgres


async def test_processes_opening_an_empty_database_at_once_all_start(pg_database: str) -> None:
    await empty_schema(pg_database)
    stores = [SqlStore(pg_database) for _ in range(4)]
    try:
        async with asyncio.timeout(60):  # (without a turn each, they waited for good)
            results = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert await stores[0].meta("absent") is None  # the schema is there, whole
    finally:
        for s in stores:
            await s.close()
