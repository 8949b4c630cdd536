"""Deleting meta rows that are done with, decided row by row in Python, in one transaction."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import Json
from switchgear.storage import tables as t

CHUNK = 500  # keys one statement names at most (SQLite's bound-parameter limit is far above)
m = t.meta.c


async def sweep_meta(conn: AsyncConnection, prefix: str, done: Callable[[str, Json], bool]) -> int:
    """Delete the rows under `prefix` that `done` says are finished with: how many went.

    The rows are read without locks (a sweep that finds nothing due, the usual one, writes
    nothing); on PostgreSQL the ones found due are read again locked, and decided on as
    they then are, so a row another worker rewrote meanwhile (a job's progress) stays."""
    q = sa.select(m.key, m.value).where(m.key.startswith(prefix, autoescape=True))
    gone = [key for key, value in (await conn.execute(q)).all() if done(key, value)]
    if conn.dialect.name == "postgresql":
        gone = [key for part in _chunks(gone) for key in await _still_due(conn, part, done)]
    for part in _chunks(gone):
        await conn.execute(sa.delete(t.meta).where(m.key.in_(part)))
    return len(gone)


async def _still_due(
    conn: AsyncConnection, keys: list[str], done: Callable[[str, Json], bool]
) -> list[str]:
    q = sa.select(m.key, m.value).where(m.key.in_(keys)).with_for_update()
    return [key for key, value in (await conn.execute(q)).all() if done(key, value)]


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + CHUNK] for i in range(0, len(keys), CHUNK)]
