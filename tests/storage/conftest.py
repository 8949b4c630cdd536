"""One storage suite, three backends: memory, SQLite, and PostgreSQL when it answers."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from switchgear.core.ports import Store
from switchgear.storage import MemoryStore, SqlStore

PG_ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

StoreFactory = Callable[[], Store]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL for this session, dropped afterwards."""
    name = f"switchgear_t_{secrets.token_hex(4)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def admin(sql: str) -> None:
        # its own loop in its own thread: this fixture may be set up inside a running loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, execute(sql)).result()

    try:
        admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as err:
        pytest.skip(f"PostgreSQL at {PG_ADMIN} unreachable: {err}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def empty_schema(url: str) -> None:
    """Drop everything in the PostgreSQL database's public schema (a test's clean slate)."""
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await admin.close()


# "+archive": the store moves statuses to its archive every few rows, so every history
# test also reads across the two tables (bulk.Archive)
@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        "sqlite+archive",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql+archive", marks=pytest.mark.postgres),
    ]
)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of stores on the same backing data (to test reopening)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    backend, _, archive = request.param.partition("+")
    archive_rows = 7 if archive else 1_000_000
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    yield lambda: SqlStore(url, archive_rows=archive_rows)
