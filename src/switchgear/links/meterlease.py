"""Which server process polls the real smart-MAIC meters: exactly one holds the lease.

A meter allows one request a minute (six seconds for the extended version), so several
workers polling it would be refused one another's slots. With PostgreSQL the workers
compete for one session advisory lock: its holder polls and stores each answer; the
others keep their shadows from the stored answers (`meter_key`), adding no history of
their own. The lock goes with its connection: when the holder dies (even kill -9) the
database frees it, and another worker takes it at its next try, within LEASE_CHECK_S.
Its connection is in autocommit: between checks the session is `idle`, never `idle in
transaction` (which would hold back VACUUM, and which `idle_in_transaction_session_timeout`
ends, dropping the lease with the session).
One process (SQLite, memory) holds the lease always (`SoleLease`).
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_KEY = 0x5347_4D50  # "SGMP": the advisory lock every worker of a database competes for
LEASE_CHECK_S = 2.0  # wall seconds between tries of a worker that does not hold it


def meter_key(device_id: int) -> str:
    """The meta key under which the holder keeps a meter's last answer."""
    return f"meterpoll:{device_id}"


class PollLease(Protocol):
    """Whether this process is the one that polls the meters."""

    @property
    def held(self) -> bool: ...

    async def keep(self) -> bool:
        """Take the lease if it is free, or check it is still ours; whether we hold it."""
        ...

    async def close(self) -> None: ...


class SoleLease:
    """One server process: it always polls."""

    held = True

    async def keep(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class AdvisoryLease:
    """A PostgreSQL session advisory lock, held on a connection of its own."""

    def __init__(self, engine: AsyncEngine, key: int = LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: AsyncConnection | None = None
        self.held = False

    async def keep(self) -> bool:
        was = self.held
        try:
            if self._conn is None:
                conn = await self._engine.connect()
                self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.held:  # the lock lives as long as this connection: is it alive?
                await self._conn.execute(sa.text("SELECT 1"))
            else:
                took = await self._conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                )
                self.held = bool(took.scalar_one())
        except Exception:  # the connection broke: whatever we held, the database freed
            log.warning("meter poll lease: database connection lost", exc_info=True)
            await self._drop()
        if self.held != was:
            log.info("meter polling: %s", "this process polls" if self.held else "another polls")
        return self.held

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:  # really closed, not back to the pool with the lock still on it
                await conn.invalidate()
                await conn.close()
            except Exception:
                log.debug("meter poll lease: closing a broken connection", exc_info=True)

    async def close(self) -> None:
        await self._drop()  # closing the session frees the lock for the next worker
