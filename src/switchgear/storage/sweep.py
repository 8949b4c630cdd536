"""Deleting meta rows that are done with, decided row by row in Python, in one transaction."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import Json
from switchgear.storage import tables as t

CHUNK = 500  # keys a DELETE names at most (SQLite's bound-parameter limit is far above)


async def sweep_meta(conn: AsyncConnection, prefix: str, done: Callable[[str, Json], bool]) -> int:
    """Delete the rows under `prefix` that `done` says are finished with: how many went.

    On PostgreSQL the rows read are locked until the transaction ends, so a row another
    worker rewrites meanwhile (an import job's progress) is decided on as it then is."""
    m = t.meta.c
    q = sa.select(m.key, m.value).where(m.key.startswith(prefix, autoescape=True))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    gone = [key for key, value in (await conn.execute(q)).all() if done(key, value)]
    for i in range(0, len(gone), CHUNK):
        await conn.execute(sa.delete(t.meta).where(m.key.in_(gone[i : i + CHUNK])))
    return len(gone)
