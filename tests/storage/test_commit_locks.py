"""Group commits of several processes on one PostgreSQL database do not queue on each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from switchgear.core.clock import VirtualClock
from switchgear.core.journal import Journal
from switchgear.core.model import Device, StatusKind, StatusRecord
from switchgear.storage import SqlStore
from tests.storage.conftest import empty_schema

pytestmark = pytest.mark.postgres


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - PostgreSQL tells no event of a lock wait
            await asyncio.sleep(0.01)


async def test_a_servers_status_commit_goes_while_a_fleets_nvram_commit_waits(
    pg_database: str,
) -> None:
    """A fleet process's NVRAM transaction held up (here by a row lock) does not hold the
    server's history commit: they used to share the `clock` row, taken first."""
    await empty_schema(pg_database)
    server_store, fleet_store = SqlStore(pg_database), SqlStore(pg_database)
    await server_store.open()
    await fleet_store.open()
    clock = VirtualClock(start=1000.0, speed=0)
    server = Journal(server_store, clock)
    fleet = Journal(fleet_store, clock, keeps_clock=False)  # as FleetNode makes it
    holder = await asyncpg.connect(pg_database)
    try:
        account = await server_store.add_account("f@x.io", "F", "$argon2id$hash")
        d = await server_store.add_device(
            Device(0, account.id, "PC-LOCK0001-001", "power-controller-v10", "pc", 1.0)
        )
        fleet.put_nvram(d.id, lambda: {"relay": [False]})
        await fleet.flush()
        server.add_status(StatusRecord("s0", d.id, 1.0, StatusKind.RELAY, "api", {"on": False}))
        await server.flush()  # the clock row exists

        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM nvram WHERE device_id = $1 FOR UPDATE", d.id)
        fleet.put_nvram(d.id, lambda: {"relay": [True]})
        fleet_commit = asyncio.ensure_future(fleet.flush())

        async def fleet_waits() -> bool:
            sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")  # fmt: skip
            return bool(await holder.fetchval(sql))

        await until(fleet_waits)  # the fleet's transaction is open, stuck on the row
        server.add_status(StatusRecord("s1", d.id, 2.0, StatusKind.RELAY, "ffr", {"on": True}))
        async with asyncio.timeout(10):
            await server.flush()
        page = await server_store.history([d.id], 0.0, 10.0)
        assert [r.id for r in page.records] == ["s0", "s1"]
        assert not fleet_commit.done()

        await held.rollback()
        await fleet_commit
        assert (await server_store.nvram())[d.id] == {"relay": [True]}
    finally:
        await holder.close()
        await fleet_store.close()
        await server_store.close()
