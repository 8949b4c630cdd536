"""Statuses move to the archive in bulk as sorted segments; history reads both tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from switchgear.core.model import Device, StatusKind, StatusRecord
from switchgear.core.ports import Batch
from switchgear.storage import SqlStore
from switchgear.storage import tables as t


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
        return
    pg = request.getfixturevalue("pg_database")
    admin = await asyncpg.connect(pg)
    await admin.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await admin.close()
    yield pg


async def fleet(store: SqlStore, size: int) -> list[int]:
    """One account's plugs; their ids."""
    a = await store.add_account("a@x.io", "A", "h")
    return [
        (await store.add_device(Device(0, a.id, f"S{i}", "SHPLG-1", "p", 1.0))).id
        for i in range(size)
    ]


def fleet_step(devices: list[int], step: int) -> list[StatusRecord]:
    """One 15-minute report from every device, as a fleet writes them: time-ordered."""
    return [
        StatusRecord(f"{d}-{step}", d, 900.0 * step + d, StatusKind.UPDATE, "auto", {"n": step})
        for d in devices
    ]


async def rows(store: SqlStore, table: sa.Table) -> list[tuple[int, float]]:
    """(device_id, ts) in the table's physical order: PostgreSQL's heap order; SQLite
    stores the archive (WITHOUT ROWID) in its key's order (segment, device, time) and the
    rest in arrival order."""
    if store.engine.dialect.name == "postgresql":
        order = [sa.text("ctid")]
    else:
        order = list(table.primary_key.columns)
    q = sa.select(table.c.device_id, table.c.ts).order_by(*order)
    async with store.engine.connect() as conn:
        result = await conn.execute(q)
    return [(r.device_id, r.ts) for r in result]


async def test_moves_take_the_oldest_rows_and_lay_them_out_device_by_device(url: str) -> None:
    store = SqlStore(url, archive_rows=12)
    await store.open()
    try:
        ids = await fleet(store, 4)
        for step in range(5):  # 4 rows a commit: the third commit's move takes all 12
            await store.commit(Batch(statuses=fleet_step(ids, step)))
        archived = await rows(store, t.statuses_archive)
        # the 12 oldest rows (steps 0-2) moved, device by device, in time order
        assert archived == [(d, 900.0 * s + d) for d in ids for s in range(3)]
        assert len(await rows(store, t.statuses)) == 8
        page = await store.history([ids[1]], 0, 1e9)
        assert [r.id for r in page.records] == [f"{ids[1]}-{s}" for s in range(5)]
    finally:
        await store.close()
    again = SqlStore(url, archive_rows=12)  # the count of recent rows survives a restart
    await again.open()
    try:
        await again.commit(Batch(statuses=fleet_step(ids, 5)))
        assert len(await rows(again, t.statuses_archive)) == 24
        page = await again.history([ids[3]], 0, 1e9)
        assert [r.id for r in page.records] == [f"{ids[3]}-{s}" for s in range(6)]
    finally:
        await again.close()


async def test_a_failed_move_leaves_the_commit_and_is_tried_again(url: str) -> None:
    store = SqlStore(url, archive_rows=4)
    await store.open()
    try:
        ids = await fleet(store, 4)
        first = fleet_step(ids, 0)
        blocker = {"segment": 1, "seq": 1, "id": "x", "device_id": ids[0], "ts": first[0].ts,
                   "kind": "update", "reason": "auto", "channel": None, "data": {},
                   "account_id": None}  # fmt: skip
        async with store.engine.begin() as conn:  # the archive already holds a row it would move
            await conn.execute(t.statuses_archive.insert().values(blocker))
        await store.commit(Batch(statuses=first))  # acknowledged: the move after it fails
        assert len(await rows(store, t.statuses)) == 4
        async with store.engine.begin() as conn:
            await conn.execute(t.statuses_archive.delete())
        await store.commit(Batch(statuses=fleet_step(ids, 1)))
        assert len(await rows(store, t.statuses_archive)) == 8  # both commits' rows
        assert await rows(store, t.statuses) == []
        page = await store.history(ids, 0, 1e9)
        assert [r.id for r in page.records] == [f"{d}-{s}" for s in range(2) for d in ids]
    finally:
        await store.close()


async def test_a_backlog_moves_in_bounded_steps_oldest_first(url: str) -> None:
    store = SqlStore(url, archive_rows=1_000_000)
    await store.open()
    try:
        ids = await fleet(store, 5)
        for step in range(6):  # 30 rows recorded before the archive (an upgraded database)
            await store.commit(Batch(statuses=fleet_step(ids, step)))
    finally:
        await store.close()
    store = SqlStore(url, archive_rows=5)
    await store.open()
    try:
        await store.commit(Batch(statuses=fleet_step(ids, 6)))  # a move of the 10 oldest
        assert len(await rows(store, t.statuses_archive)) == 10
        await store.commit(Batch(statuses=fleet_step(ids, 7)))
        await store.commit(Batch(statuses=fleet_step(ids, 8)))
        assert len(await rows(store, t.statuses_archive)) == 30
        page = await store.history(ids[:1], 0, 1e9)
        assert [r.id for r in page.records] == [f"{ids[0]}-{s}" for s in range(9)]
    finally:
        await store.close()


async def segments(store: SqlStore) -> list[tuple[int, float, float, int]]:
    g = t.status_segments
    async with store.engine.connect() as conn:
        result = await conn.execute(sa.select(g).order_by(g.c.id))
    return [tuple(r) for r in result]


async def test_each_move_appends_a_segment_that_records_its_span(url: str) -> None:
    store = SqlStore(url, archive_rows=6)
    await store.open()
    try:
        ids = await fleet(store, 3)
        for step in range(4):  # 3 rows a commit: a move after the second and the fourth
            await store.commit(Batch(statuses=fleet_step(ids, step)))
        # each segment device by device; the second after the first whatever its devices
        assert await rows(store, t.statuses_archive) == [
            (d, 900.0 * s + d) for seg in (0, 2) for d in ids for s in (seg, seg + 1)
        ]
        assert await segments(store) == [
            (1, 0 * 900.0 + ids[0], 1 * 900.0 + ids[2], 6),
            (2, 2 * 900.0 + ids[0], 3 * 900.0 + ids[2], 6),
        ]
        page = await store.history([ids[2]], 900.0, 1e9)  # the first segment's last row on
        assert [r.id for r in page.records] == [f"{ids[2]}-{s}" for s in (1, 2, 3)]
        page = await store.history([ids[0]], 0, 2 * 900.0)  # only the first segment meets it
        assert [r.id for r in page.records] == [f"{ids[0]}-{s}" for s in (0, 1)]
    finally:
        await store.close()


DAY = 86_400.0


async def test_a_long_range_reads_in_order_and_pages_across_its_windows(url: str) -> None:
    store = SqlStore(url, archive_rows=10)
    await store.open()
    try:
        ids = await fleet(store, 2)
        # a status a day for 90 days, then one far later: archived, and the last recent
        for day in [*range(90), 400]:
            await store.commit(Batch(statuses=[
                StatusRecord(f"{d}-{day}", d, day * DAY + d, StatusKind.UPDATE, "auto", {})
                for d in ids
            ]))  # fmt: skip
        assert len(await segments(store)) == 18  # 180 rows archived, day 400 recent
        wanted = [f"{ids[1]}-{day}" for day in [*range(90), 400]]
        page = await store.history([ids[1]], -1e6, 1000 * DAY, limit=1000)
        assert [r.id for r in page.records] == wanted
        assert page.next_cursor is None
        got, cursor = [], None
        while True:  # pages of 7: each resumes where the last stopped, windows or not
            page = await store.history([ids[1]], -1e6, 1000 * DAY, cursor, limit=7)
            got += [r.id for r in page.records]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert got == wanted
        page = await store.history([ids[0]], 80 * DAY, 500 * DAY, limit=20)
        assert [r.id for r in page.records] == [f"{ids[0]}-{day}" for day in [*range(80, 90), 400]]
        page = await store.history([ids[0]], 100 * DAY, 399 * DAY)  # between the two: nothing
        assert page.records == () and page.next_cursor is None
    finally:
        await store.close()


async def test_pages_keep_every_row_that_shares_a_time_across_segments(url: str) -> None:
    """Each move empties the recent table; a status's `seq` must still never repeat, or
    the cursor (time, then seq) skips rows that share a time with another segment's."""
    store = SqlStore(url, archive_rows=2)
    await store.open()
    try:
        ids = await fleet(store, 2)
        times = [10.0, 11.0, 10.0, 12.0, 10.0, 13.0, 10.0]  # three moves, four rows at 10
        for i, ts in enumerate(times):
            record = StatusRecord(f"r{i}", ids[i % 2], ts, StatusKind.UPDATE, "auto", {})
            await store.commit(Batch(statuses=[record]))
        assert len(await segments(store)) == 3
        got, cursor = [], None
        while True:
            page = await store.history(ids, 0, 100, cursor, limit=1)
            got += [r.id for r in page.records]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(got) == [f"r{i}" for i in range(len(times))]
        assert [r.id for r in (await store.history(ids, 0, 100)).records] == got
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_move_behind_a_long_reader_deletes_instead_of_waiting_on_truncate(
    pg_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from switchgear.storage import commits

    caplog.set_level("INFO", logger="switchgear.storage.commits")
    monkeypatch.setattr(commits, "TRUNCATE_LOCK_TIMEOUT", "SET LOCAL lock_timeout = '100ms'")
    admin = await asyncpg.connect(pg_database)
    await admin.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    store = SqlStore(pg_database, archive_rows=4)
    await store.open()
    reader = await asyncpg.connect(pg_database)
    try:
        ids = await fleet(store, 4)
        await store.commit(Batch(statuses=fleet_step(ids, 0)))  # a first move: TRUNCATE
        assert len(await rows(store, t.statuses_archive)) == 4
        async with reader.transaction():  # a dump or long report holds the recent table
            assert await reader.fetchval("SELECT count(*) FROM statuses") == 0
            await store.commit(Batch(statuses=fleet_step(ids, 1)))
            assert "by DELETE: LockNotAvailableError" in caplog.text
            assert await reader.fetchval("SELECT count(*) FROM statuses") == 0
        assert len(await rows(store, t.statuses_archive)) == 8
        assert await rows(store, t.statuses) == []
        page = await store.history(ids, 0, 1e9)
        assert [r.id for r in page.records] == [f"{d}-{s}" for s in range(2) for d in ids]
    finally:
        await reader.close()
        await store.close()
        await admin.close()
