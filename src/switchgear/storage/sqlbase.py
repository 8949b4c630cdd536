"""SqlBase: the store's engine and connection set-up, migrations and serialised writes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from switchgear import jsontext
from switchgear.storage import bulk
from switchgear.storage import tables as t
from switchgear.storage.private import private_sqlite
from switchgear.storage.sqlitewriter import SqliteWriter, pragmas
from switchgear.storage.url import async_url

MIGRATIONS = Path(__file__).parent / "migrations"


MIGRATION_LOCK = 0x5347_4D49  # "SGMI": the lock servers starting on one PostgreSQL take


def _upgrade(conn: sa.Connection) -> None:
    """Migrate to the newest schema. On PostgreSQL, servers starting at once (several
    hosts, a rollout) take turns: the first migrates, the others then find it done (run
    together, their migrations waited on each other's tables for good)."""
    if conn.dialect.name == "postgresql":  # held until this transaction ends
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(alembic_config(conn), "head")


def alembic_config(conn: sa.Connection) -> Config:
    """Alembic's configuration for our migrations, on this connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


class SqlBase:
    """What every part of the store shares: the engine, the write lock and the writers."""

    def __init__(self, url: str, archive_rows: int = bulk.ARCHIVE_ROWS) -> None:
        self.url = async_url(url)
        self._engine: AsyncEngine | None = None
        self._write = asyncio.Lock()
        self._writes: bulk.Writes | None = None
        self._copy = False
        self._sqlite: SqliteWriter | None = None
        self._archive_rows = archive_rows
        self._recent = 0  # rows in `statuses`, not yet moved to the archive

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store is not open")
        return self._engine

    async def open(self) -> None:
        path = sa.engine.make_url(self.url).database
        if self.url.startswith("sqlite") and path and path != ":memory:":
            private_sqlite(path)  # before SQLite creates it (and its WAL/SHM) 0644
        engine = create_async_engine(  # JSON columns read and written by the hot-path codec
            self.url, json_serializer=jsontext.dumps_text, json_deserializer=jsontext.loads
        )
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", lambda conn, _: pragmas(conn))
        self._copy = engine.dialect.name == "postgresql"
        self._writes = bulk.Writes.for_dialect(engine.dialect, self._archive_rows)
        self._engine = engine
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
            self._recent = (
                await conn.execute(sa.select(sa.func.count()).select_from(t.statuses))
            ).scalar_one()
        path = engine.url.database
        if engine.dialect.name == "sqlite" and path and path != ":memory:":
            self._sqlite = SqliteWriter(path, self._writes)
            await self._sqlite.open()

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def writes(self) -> bulk.Writes:
        if self._writes is None:
            raise RuntimeError("store is not open")
        return self._writes

    async def _one_write(self, stmt: Any) -> Any:
        async with self._write, self.engine.begin() as conn:
            return await conn.execute(stmt)
