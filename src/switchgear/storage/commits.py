"""The command journal in SQL: batches group-committed, statuses moved to the archive."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import CommandRecord, CommandState
from switchgear.core.ports import Batch
from switchgear.storage import bulk, pgone
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import SqlBase

# a move sorts ~25 MB of rows: in memory, not in temporary files (PostgreSQL's default 4 MB)
MOVE_WORK_MEM = "SET LOCAL work_mem = '64MB'"
# how long a move's TRUNCATE waits for readers of the recent table (a pg_dump, a long
# read) before it deletes the moved rows instead: writers wait on the move meanwhile
TRUNCATE_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '1s'"

log = logging.getLogger(__name__)


class Commits(SqlBase):
    """The batch commit (statuses, commands, NVRAM), its archive moves and command reads."""

    async def command(self, command_id: str) -> CommandRecord | None:
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(sa.select(t.commands).where(t.commands.c.id == command_id))
            ).first()
        if r is None:
            return None
        return CommandRecord(
            id=r.id,
            device_id=r.device_id,
            account_id=r.account_id,
            name=r.name,
            params=r.params,
            state=CommandState(r.state),
            created_at=r.created_at,
            updated_at=r.updated_at,
            result=r.result,
            error=r.error,
        )

    # --- group commit -------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        async with self._write:
            if self._sqlite is not None:
                await self._sqlite.commit(batch)
            elif self._copy:
                await self._commit_asyncpg(batch)
            else:
                async with self.engine.begin() as conn:
                    await self._commit_driver_sql(conn, batch)
            self._recent += len(batch.statuses)
            if self._recent >= self._archive_rows:
                await self._archive()

    async def _archive(self) -> None:
        """Move the oldest recent statuses to the archive; the batch before is committed
        whatever happens here, so a failed move is logged and tried again next commit."""
        try:
            if self._sqlite is not None:
                moved = await self._sqlite.archive()
            elif self._copy:
                moved = await self._archive_asyncpg()
            else:
                moved = await self._archive_driver_sql()
        except Exception as err:  # the next commit tries again
            log.warning("moving statuses to the archive failed: %s", err)
            return
        self._recent -= moved

    async def _archive_driver_sql(self) -> int:
        a = self.writes.archive
        async with self.engine.begin() as conn:
            hi = (await conn.exec_driver_sql(a.bound)).scalar()
            if hi is None:
                return 0
            segment = (await conn.exec_driver_sql(a.segment)).scalar()
            span = (await conn.exec_driver_sql(a.span, (hi,))).one()
            moved = (await conn.exec_driver_sql(a.copy, (segment, hi))).rowcount
            await conn.exec_driver_sql(a.record, (segment, *span, moved))
            await conn.exec_driver_sql(a.delete, (hi,))
        return int(moved)

    async def _archive_asyncpg(self) -> int:
        a = self.writes.archive
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            try:
                async with pg.transaction(isolation="repeatable_read"):
                    await pg.execute(a.lock)  # before the snapshot: it sees every row
                    await pg.execute(MOVE_WORK_MEM)
                    hi = await pg.fetchval(a.bound)
                    if hi is None:
                        return 0
                    newest = await pg.fetchval(a.newest)
                    segment = await pg.fetchval(a.segment)
                    first, last = await pg.fetchrow(a.span, hi)
                    status = await pg.execute(a.copy, segment, hi)
                    moved = int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"
                    await pg.execute(a.record, segment, first, last, moved)
                    if hi == newest:
                        await _truncate_or_delete(pg, a, hi)
                    else:
                        await pg.execute(a.delete, hi)
            except BaseException:
                raw.invalidate()
                raise
        return moved

    async def _commit_driver_sql(self, conn: AsyncConnection, batch: Batch) -> None:
        """In-memory SQLite: one executemany per table inside SQLAlchemy's transaction."""
        for stmt, rows in bulk.planned(self.writes, batch):
            await conn.exec_driver_sql(stmt.sql, rows)

    async def _commit_asyncpg(self, batch: Batch) -> None:
        """PostgreSQL: a small batch as one statement (pgone.py); a big one's statuses by
        COPY (several times executemany's rate), in one transaction."""
        w = self.writes
        plan = bulk.planned(w, batch)
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            try:
                if pgone.fits(plan):
                    await pg.execute(pgone.statement(tuple(stmt for stmt, _ in plan)),
                                     *pgone.arguments(plan))  # fmt: skip
                    return
                async with pg.transaction():
                    for stmt, rows in plan:
                        if stmt is w.statuses:
                            await pg.copy_records_to_table(
                                "statuses", records=rows, columns=stmt.columns
                            )
                        else:
                            await pg.executemany(stmt.sql, rows)
            except BaseException:
                raw.invalidate()  # SQLAlchemy did not see the error: never reuse the link
                raise


async def _truncate_or_delete(pg: Any, a: bulk.Archive, hi: int) -> None:
    """Empty PostgreSQL's recent table after a move that took every row: TRUNCATE when it
    gets its lock in time (it needs every reader gone) and the role may; else DELETE."""
    await pg.execute(TRUNCATE_LOCK_TIMEOUT)
    try:
        async with pg.transaction():  # a savepoint: a refused TRUNCATE leaves the move whole
            await pg.execute(a.clear)
    except (asyncpg.LockNotAvailableError, asyncpg.InsufficientPrivilegeError) as err:
        log.info("emptying the recent statuses by DELETE: %s", type(err).__name__)
        await pg.execute(a.delete, hi)
