"""SqlCounters: the Counters port in the database, shared by every worker (PostgreSQL).

Each add is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: the row lock it takes
makes concurrent adds on one key count one after another, across processes; with a
limit the update's WHERE refuses the add that would pass it (no row comes back). A key
longer than KEY_MAX (an address or e-mail as a request gave it) is kept as its digest:
PostgreSQL's index cannot hold an entry past about 2.7 kB; so is one holding a NUL,
which its text cannot hold at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from switchgear.core.counters import Tally
from switchgear.storage import tables as t
from switchgear.storedtext import NUL

c = t.counters.c
KEY_MAX = 256  # characters of a key stored as it is


def stored(key: str) -> str:
    """The key as its row holds it: itself, or the digest of a long one or of one holding
    a NUL (an e-mail or devid as a request gave it; PostgreSQL's text keeps no NUL)."""
    if len(key) <= KEY_MAX and NUL not in key:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class SqlCounters:
    """Counters as rows of `counters` (scope, key, count, ends)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def add(
        self, scope: str, key: str, now: float, ends: float, n: int = 1, limit: int | None = None
    ) -> Tally:
        key = stored(key)
        if limit is not None and n > limit:
            return Tally((await self.peek(scope, key, now)).count, ends, admitted=False)
        ins = self._insert(t.counters).values(scope=scope, key=key, count=n, ends=ends)
        ended = c.ends <= now
        stmt = ins.on_conflict_do_update(
            index_elements=[c.scope, c.key],
            set_={
                "count": sa.case((ended, n), else_=c.count + n),
                "ends": sa.case((ended, ends), else_=c.ends),
            },
            where=None if limit is None else (c.ends <= now) | (c.count + n <= limit),
        ).returning(c.count, c.ends)
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
            if row is not None:
                return Tally(int(row[0]), float(row[1]))
            held = (
                await conn.execute(sa.select(c.count, c.ends).where(c.scope == scope, c.key == key))
            ).first()
        if held is None:  # swept meanwhile: nothing to refuse against
            return await self.add(scope, key, now, ends, n, limit)
        return Tally(int(held[0]), float(held[1]), admitted=False)

    async def peek(self, scope: str, key: str, now: float) -> Tally:
        key = stored(key)
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(c.count, c.ends).where(c.scope == scope, c.key == key))
            ).first()
        if row is None or row[1] <= now:
            return Tally(0, now)
        return Tally(int(row[0]), float(row[1]))

    async def take(self, scope: str, key: str, n: int = 1) -> None:
        key = stored(key)
        stmt = (
            sa.update(t.counters)
            .where(c.scope == scope, c.key == key)
            .values(count=sa.case((c.count > n, c.count - n), else_=0))
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def mark(self, scope: str, key: str, ends: float) -> None:
        key = stored(key)
        ins = self._insert(t.counters).values(scope=scope, key=key, count=1, ends=ends)
        stmt = ins.on_conflict_do_update(
            index_elements=[c.scope, c.key], set_={"count": 1, "ends": ends}
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def clear(self, scope: str, key: str) -> None:
        key = stored(key)
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(t.counters).where(c.scope == scope, c.key == key))

    async def sweep(self, scopes: Collection[str], now: float) -> int:
        stmt = sa.delete(t.counters).where(c.scope.in_(list(scopes)), c.ends <= now)
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount or 0)
