"""Group commit: flush() returns only once what was queued before it is committed."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from switchgear.core.clock import VirtualClock
from switchgear.core.journal import Journal
from switchgear.core.model import StatusKind, StatusRecord
from switchgear.core.ports import Store
from tests.api.test_mqtt_devices import until
from tests.core.fakes import RecordingStore


def rec(i: int) -> StatusRecord:
    return StatusRecord(str(i), 1, float(i), StatusKind.RELAY, "api", {"on": True})


def journal(store: RecordingStore) -> Journal:
    return Journal(cast(Store, store), VirtualClock(start=1000.0, speed=0))


async def test_flush_waits_for_the_commit_that_holds_the_write() -> None:
    gate = asyncio.Event()
    store = RecordingStore(gate)
    j = journal(store)
    j.start()
    try:
        j.add_status(rec(1))
        j.put_nvram(7, {"relay": [True]})
        flushed = asyncio.ensure_future(j.flush())
        await until(lambda: store.started == 1)  # the commit is under way, held at the gate
        assert not flushed.done() and store.batches == []
        gate.set()
        await flushed
        assert [r.id for b in store.batches for r in b.statuses] == ["1"]
        assert store.batches[-1].nvram == {7: {"relay": [True]}}
        assert store.batches[-1].meta["clock"] == 1000.0
    finally:
        gate.set()
        await j.stop()


async def test_concurrent_writers_share_commits() -> None:
    gate = asyncio.Event()
    store = RecordingStore(gate)
    j = journal(store)
    j.start()

    async def writer(i: int) -> None:
        j.add_status(rec(i))
        await j.flush()

    try:
        first = asyncio.ensure_future(writer(0))
        await until(lambda: store.started == 1)  # the first write's commit holds the disk
        rest = asyncio.gather(*(writer(i) for i in range(1, 200)))
        await asyncio.sleep(0)  # (each writer queues its record and waits for its flush)
        gate.set()
        await asyncio.gather(first, rest)
    finally:
        gate.set()
        await j.stop()
    ids = [r.id for b in store.batches for r in b.statuses]
    assert sorted(ids, key=int) == [str(i) for i in range(200)]
    # the 199 writes that came while the first commit held the disk went in one more
    assert [len(b.statuses) for b in store.batches] == [1, 199]


async def test_nvram_is_last_write_wins_within_a_batch() -> None:
    store = RecordingStore()
    j = journal(store)
    j.put_nvram(1, {"v": 1})
    j.put_nvram(1, {"v": 2})
    await j.flush()  # not started: commits inline
    assert store.batches[0].nvram == {1: {"v": 2}}


async def test_a_failed_commit_fails_the_flush_and_keeps_the_writes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RecordingStore(fail=True)
    j = journal(store)
    j.start()
    try:
        j.add_status(rec(1))
        with pytest.raises(OSError):
            await j.flush()
        store.fail = False  # the disk is back: the next commit carries the kept write
        j.add_status(rec(2))
        await j.flush()
    finally:
        await j.stop()
    assert [r.id for b in store.batches for r in b.statuses] == ["1", "2"]
    assert "group commit failed" in caplog.text


async def test_a_fleet_journal_leaves_the_servers_clock_alone() -> None:
    """A fleet process's NVRAM commits write no `clock` row: the server's group commits
    write it, and a fleet's large NVRAM transaction holding its lock stalled them."""
    store = RecordingStore(None)
    j = Journal(cast(Store, store), VirtualClock(start=1000.0, speed=0), keeps_clock=False)
    j.put_nvram(7, lambda: {"relay": [True]})
    await j.flush()
    assert store.batches[-1].nvram == {7: {"relay": [True]}}
    assert store.batches[-1].meta == {}
    await j.flush()  # nothing queued: no empty transaction
    assert len(store.batches) == 1


async def test_the_backlog_counts_status_records_queued_and_under_commit() -> None:
    gate = asyncio.Event()
    store = RecordingStore(gate)
    j = journal(store)
    assert j.backlog == 0
    j.start()
    try:
        for i in range(3):
            j.add_status(rec(i))
        assert j.backlog == 3
        await until(lambda: store.started == 1)  # taken, held at the gate: still a backlog
        j.add_status(rec(3))
        assert j.backlog == 4
        gate.set()
        await j.flush()
        assert j.backlog == 0
    finally:
        gate.set()
        await j.stop()
