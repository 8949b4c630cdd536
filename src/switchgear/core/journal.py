"""Group commit: writes queue here and go to the store in one transaction per batch.

`flush()` returns once everything queued before the call is durable, so a command is
acknowledged only after its status record and the device's NVRAM are on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from switchgear.core.clock import Clock
from switchgear.core.model import CommandRecord, Json, StatusRecord
from switchgear.core.ports import Batch, Store

log = logging.getLogger(__name__)

RETRY_S = 0.2  # pause before retrying a failed commit


class Journal:
    """Batches status records, NVRAM, command records and meta into group commits."""

    def __init__(self, store: Store, clock: Clock, *, keeps_clock: bool = True) -> None:
        """`keeps_clock`: each batch also stores the clock's instant (meta `clock`, where a
        restarted server resumes); a fleet process reads the server's clock and keeps none."""
        self._store = store
        self._clock = clock
        self._keeps_clock = keeps_clock
        self._pending = Batch()
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._committing_statuses = 0  # status records of batches under commit
        self.batches = 0  # committed batches, for metrics and tests
        # told of each committed batch: its size (records) and how long the commit took
        self.on_commit: Callable[[int, float], None] | None = None

    def add_status(self, record: StatusRecord) -> None:
        self._pending.statuses.append(record)
        self._wake.set()

    def put_nvram(self, device_id: int, build: Callable[[], Json]) -> None:
        """A device's NVRAM, built when its batch is taken: once however often it saved."""
        self._pending.nvram[device_id] = build
        self._wake.set()

    def put_command(self, record: CommandRecord) -> None:
        self._pending.commands[record.id] = record
        self._wake.set()

    def put_meta(self, key: str, value: Json) -> None:
        self._pending.meta[key] = value
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Status records queued or under commit (thousands: a burst being recorded)."""
        return len(self._pending.statuses) + self._committing_statuses

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if self._task is None:  # not running (tests, shutdown): commit inline
            await self._commit_pending()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake.set()
        await fut

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="journal")

    async def stop(self) -> None:
        """Commit what is pending and stop the writer."""
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._commit_pending()

    async def _commit_pending(self) -> None:
        batch, self._pending = self._pending, Batch()
        if not batch:
            return
        statuses = len(batch.statuses)
        self._committing_statuses += statuses
        try:
            await self._commit(batch)
        finally:
            self._committing_statuses -= statuses

    async def _commit(self, batch: Batch) -> None:
        for device_id, blob in batch.nvram.items():  # after a failed try some are built
            if callable(blob):
                batch.nvram[device_id] = blob()
        if self._keeps_clock:
            batch.meta.setdefault("clock", self._clock.now())
        started = time.perf_counter()
        try:
            await self._store.commit(batch)
        except BaseException:
            self._requeue(batch)
            raise
        self.batches += 1
        if self.on_commit is not None:
            size = len(batch.statuses) + len(batch.nvram) + len(batch.commands)
            self.on_commit(size, time.perf_counter() - started)

    def _requeue(self, batch: Batch) -> None:
        """Put a failed batch back in front of what queued since, for the next try."""
        newer = self._pending
        batch.statuses.extend(newer.statuses)
        batch.nvram.update(newer.nvram)
        batch.commands.update(newer.commands)
        batch.meta.update(newer.meta)
        self._pending = batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiters, self._waiters = self._waiters, []
            try:
                await self._commit_pending()
            except Exception as err:
                log.exception("group commit failed; retrying")
                for w in waiters:
                    if not w.done():
                        w.set_exception(err)
                await asyncio.sleep(RETRY_S)
                self._wake.set()
                continue
            for w in waiters:
                if not w.done():
                    w.set_result(None)
