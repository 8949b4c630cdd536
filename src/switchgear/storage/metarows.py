"""The meta table in SQL: keys read, claimed or taken once across workers, and swept."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from switchgear.core.model import Json
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import SqlBase
from switchgear.storage.sweep import sweep_meta


class MetaRows(SqlBase):
    """The meta table."""

    async def meta(self, key: str) -> Json | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key))).first()
        return None if r is None else r.value

    async def claim(self, key: str, value: Json) -> Json:
        try:
            await self._one_write(t.meta.insert().values(key=key, value=value))
        except IntegrityError:  # taken: by another worker, or before this one's restart
            return await self.meta(key)
        return value

    async def metas(self, prefix: str) -> dict[str, Json]:
        q = sa.select(t.meta.c.key, t.meta.c.value).where(
            t.meta.c.key.startswith(prefix, autoescape=True)
        )
        async with self.engine.connect() as conn:
            return {r.key: r.value for r in await conn.execute(q) if r.value is not None}

    async def take_meta(self, key: str, value: Json | None = None) -> bool:
        if value is not None:
            return await self._take_if(key, value)
        gone = await self._one_write(sa.delete(t.meta).where(t.meta.c.key == key))
        return bool(gone.rowcount == 1)

    async def _take_if(self, key: str, value: Json) -> bool:
        """Delete the row `key` if it holds `value`: one DELETE, undone if it held another."""
        delete = sa.delete(t.meta).where(t.meta.c.key == key).returning(t.meta.c.value)
        async with self._write, self.engine.connect() as conn, conn.begin() as tx:
            row = (await conn.execute(delete)).first()
            if row is not None and row.value != value:
                await tx.rollback()
                return False
            return row is not None

    async def sweep_meta(self, prefix: str, done: Callable[[str, Json], bool]) -> int:
        async with self._write, self.engine.begin() as conn:
            return await sweep_meta(conn, prefix, done)
