"""The SQLite group-commit writer: its own connection on its own thread, one hop per batch.

Through aiosqlite every statement of a group commit is a round trip to aiosqlite's
thread (about 0.35 ms each under load, six per batch); here the whole transaction runs in
one call on a dedicated thread, which holds SQLite's only write lock while the event
loop goes on (sqlite3 releases the GIL while SQLite works).

WAL checkpoints (copying the log into the database file, with an fsync) cost two thirds
of a commit when SQLite runs them inside COMMIT; the writer turns automatic checkpoints
off and runs a PASSIVE one on a second thread every few thousand rows instead, so no
acknowledgement waits for one. Durability is unchanged: a commit is in the WAL either way.

PASSIVE checkpoints alone do not keep the log bounded: under a sustained write load the
WAL file kept growing even while they reported every frame copied (a 10,000-device ingest
grew it to 74 GB). So every WAL_RESET_ROWS rows the writer itself runs a RESTART
checkpoint before its next batch (it waits for readers, and the next write starts the
file over), and `journal_size_limit` trims the file back after each restart.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from switchgear.core.ports import Batch
from switchgear.storage import bulk

log = logging.getLogger(__name__)

CHECKPOINT_ROWS = 5_000  # rows written since the last checkpoint that call for the next
CHECKPOINT_S = 30.0  # or this long, if anything was written at all
WAL_RESET_ROWS = 100_000  # rows since the WAL was last fully checkpointed: restart it
# the writer's page cache: a fleet's history index takes inserts at one leaf per device
# (10,000 devices: ~40 MB of hot leaves); SQLite's default is 2 MB
WRITER_CACHE_KIB = 131_072

INLINE_ROWS = 512  # batches up to this size commit on the event loop's own thread

Work = list[tuple[str, list[bulk.Row]]]

PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer
    "PRAGMA synchronous=NORMAL",  # a commit survives the process dying
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_size_limit=67108864",  # the WAL file shrinks back to 64 MiB on restart
)


def pragmas(conn: Any) -> None:
    """The settings every switchgear SQLite connection runs with."""
    cur = conn.cursor()
    for pragma in PRAGMAS:
        cur.execute(pragma)
    cur.close()


class SqliteWriter:
    """Commits batches to one SQLite file through a connection only its thread uses."""

    def __init__(self, path: str, writes: bulk.Writes) -> None:
        self._path = path
        self._writes = writes
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._rows = 0  # written since the last checkpoint began
        self._unreset = 0  # written since the writer last restarted the WAL
        self._last_checkpoint = time.monotonic()

    async def open(self) -> None:
        self._conn = await self._run(self._connect)
        loop = asyncio.get_running_loop()
        self._ckpt_conn = await loop.run_in_executor(self._checkpointer, self._connect)

    async def close(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        if self._ckpt_conn is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._checkpointer, self._ckpt_conn.close)
            self._ckpt_conn = None
        self._pool.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)

    async def commit(self, batch: Batch) -> None:
        """Write the batch in one transaction; returns once it is committed."""
        work: Work = [(stmt.sql, rows) for stmt, rows in bulk.planned(self._writes, batch)]
        if not work:
            return
        rows = sum(len(r) for _, r in work)
        if self._unreset >= WAL_RESET_ROWS:
            await self._restart_log()
        if rows <= INLINE_ROWS:
            self._write(work)  # the loop waits well under a millisecond; no GIL ping-pong
        else:
            await self._run(self._write, work)
        self._rows += rows
        self._unreset += rows
        self._maybe_checkpoint()

    async def archive(self) -> int:
        """Move the oldest recent statuses to the archive (bulk.Archive); rows moved."""
        moved: int = await self._run(self._archive)
        self._unreset += moved  # the move wrote about as much to the WAL again
        return moved

    def _archive(self) -> int:
        conn, a = self._conn, self._writes.archive
        if conn is None:
            raise RuntimeError("writer is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            ((hi,),) = conn.execute(a.bound).fetchall()
            moved = 0
            if hi is not None:
                ((newest,),) = conn.execute(a.newest).fetchall()
                ((segment,),) = conn.execute(a.segment).fetchall()
                ((first, last),) = conn.execute(a.span, (hi,)).fetchall()
                moved = conn.execute(a.copy, (segment, hi)).rowcount
                conn.execute(a.record, (segment, first, last, moved))
                if hi == newest:
                    conn.execute(a.clear)  # every recent row moved: SQLite frees the pages
                else:
                    conn.execute(a.delete, (hi,))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return moved

    async def _restart_log(self) -> None:
        """Checkpoint the whole log and start it over (waits for a PASSIVE one under way:
        SQLite runs one checkpoint at a time, and a busy RESTART would leave it growing)."""
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if await self._run(self._restart_wal):
            self._unreset = 0

    def _maybe_checkpoint(self) -> None:
        due = self._rows >= CHECKPOINT_ROWS or (
            self._rows and time.monotonic() - self._last_checkpoint >= CHECKPOINT_S
        )
        if not due or self._checkpointing is not None or self._ckpt_conn is None:
            return
        if self._unreset >= WAL_RESET_ROWS:
            return  # the writer restarts the log before its next batch
        self._rows = 0
        self._last_checkpoint = time.monotonic()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._checkpointer, self._checkpoint, self._ckpt_conn)
        self._checkpointing = fut
        fut.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, fut: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("WAL checkpoint failed: %s", fut.exception())

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _restart_wal(self) -> bool:
        """A RESTART checkpoint on the writer's connection; True if the log starts over."""
        conn = self._conn
        if conn is None:
            return False
        ((busy, _, _),) = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        return bool(busy == 0)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        pragmas(conn)
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread runs them
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        return conn

    def _write(self, work: Work) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("writer is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in work:
                conn.executemany(sql, rows)
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
