"""Meta rows past their use are swept (fired timers' claims, expired import jobs' records);
FFR group ids stay. The same on every backend; the sweeps' "now" is a manual clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import asyncpg
import pytest

from switchgear import importjobs, metasweep
from switchgear.app import create_app
from switchgear.core.bus import NoPeers
from switchgear.core.clock import VirtualClock
from switchgear.core.model import Json
from switchgear.core.ports import Batch, Store
from switchgear.importjobs import Job, JobState
from switchgear.links.shellygroup import CLAIM_KEEP_S, TIMER_CLAIM, Group
from switchgear.settings import Settings
from switchgear.storage import MemoryStore, SqlStore
from tests.api.test_mqtt_devices import until
from tests.storage.conftest import StoreFactory, empty_schema, pg_database  # noqa: F401
from tests.storage.test_store import opened

T0 = 1_790_000_000.0  # the manual wall clock's start


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    async with opened(make_store) as s:
        yield s


async def rows(store: Store, prefix: str) -> list[str]:
    """The keys of the rows under `prefix`, read through the port (a sweep that keeps all)."""
    keys: list[str] = []
    await store.sweep_meta(prefix, lambda key, _: keys.append(key) or False)  # type: ignore[func-returns-value]
    return sorted(keys)


def worker(store: Store, name: str, wall: VirtualClock) -> Group:
    group = Group("switchgear-test", lambda *_: None, NoPeers(), store.claim, wall)
    group.worker = name
    return group


async def test_a_fired_timers_claim_goes_an_hour_after_it_was_taken(store: Store) -> None:
    wall = VirtualClock(start=T0, speed=0)
    a, b = worker(store, "A", wall), worker(store, "B", wall)
    due = T0 + 30.0  # (a due time on the server's clock)
    assert await a.fire(7, due, True) is True
    assert await b.fire(7, due, True) is False  # the other worker: it fired once
    wall.set(T0 + 60.0)
    assert await b.fire(7, due + 60.0, False) is True  # the flip-back, a run of its own
    assert len(await rows(store, TIMER_CLAIM)) == 2
    assert await metasweep.sweep(store, T0 + CLAIM_KEEP_S - 1.0) == 0  # still in its hour
    assert len(await rows(store, TIMER_CLAIM)) == 2
    assert await a.fire(7, due, True) is False  # a late worker still finds it taken
    assert await metasweep.sweep(store, T0 + CLAIM_KEEP_S) == 1  # the first: its hour is up
    assert await rows(store, TIMER_CLAIM) == [f"{TIMER_CLAIM}7/{due + 60.0!r}/0"]
    assert await metasweep.sweep(store, T0 + 60.0 + CLAIM_KEEP_S) == 1
    assert await rows(store, TIMER_CLAIM) == []


def job(state: JobState, account_id: int = 1) -> Job:
    return Job(f"{int(state == JobState.DONE)}{'0' * 23}", account_id, 10, state)


async def test_import_job_records_go_an_hour_after_they_end_or_stop_being_written(
    store: Store,
) -> None:
    keep = importjobs.KEEP_S
    done = importjobs.to_record(job(JobState.DONE), T0)  # finished at T0
    stuck = importjobs.to_record(job(JobState.IMPORTING), T0 + 600.0)  # last written then
    meta = {
        importjobs.key("done"): done,
        importjobs.key("stuck"): stuck,
        importjobs.key("dropped"): None,
    }  # fmt: skip (a job its worker let go)
    await store.commit(Batch(meta=meta))
    assert len(await rows(store, importjobs.PREFIX)) == 3
    assert await metasweep.sweep(store, T0 + 1.0) == 1  # the dropped one's null row
    assert await rows(store, importjobs.PREFIX) == [importjobs.key("done"), importjobs.key("stuck")]
    assert await metasweep.sweep(store, T0 + keep - 1.0) == 0
    assert importjobs.from_record(await store.meta(importjobs.key("done")), 1, T0 + keep - 1.0)
    assert await metasweep.sweep(store, T0 + keep) == 1  # read as gone from here on
    assert await rows(store, importjobs.PREFIX) == [importjobs.key("stuck")]
    assert await metasweep.sweep(store, T0 + 600.0 + keep) == 1
    assert await rows(store, importjobs.PREFIX) == []


async def test_ffr_group_ids_and_other_rows_stay(store: Store) -> None:
    assert await store.claim("ffr:group-id:1", True) is True
    await store.commit(Batch(meta={"ffr:groups": [], "clock": T0, "import:jobs": 1}))
    assert await metasweep.sweep(store, T0 + 10 * 365 * 86_400.0) == 0
    assert await rows(store, "ffr:") == ["ffr:group-id:1", "ffr:groups"]
    assert await store.meta("import:jobs") == 1  # (not under a swept prefix: no colon)
    assert await store.claim("ffr:group-id:1", "again") is True  # taken: never given again


async def test_a_prefix_is_matched_literally(store: Store) -> None:
    await store.commit(Batch(meta={"a_b/1": 1, "axb/1": 2, "a%b/1": 3}))
    assert await store.sweep_meta("a_b/", lambda *_: True) == 1
    assert await store.sweep_meta("a%b/", lambda *_: True) == 1
    assert await rows(store, "a") == ["axb/1"]


async def test_a_server_sweeps_once_it_has_started() -> None:
    store = MemoryStore()
    old = importjobs.to_record(job(JobState.DONE), 0.0)  # finished long ago (wall clock)
    await store.commit(Batch(meta={importjobs.key("old"): old}))
    settings = Settings(database_url="memory://", speed=0, secret_key="s" * 32)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):

        async def swept() -> bool:
            return await rows(store, importjobs.PREFIX) == []

        await until(swept)


@pytest.mark.postgres
async def test_a_row_rewritten_while_a_sweep_decides_is_decided_on_as_it_then_is(
    pg_database: str,  # noqa: F811
) -> None:
    """Another worker rewrites a row the sweep found due (a job's progress) before the
    sweep locks it: the sweep reads it again under its lock and keeps it."""
    await empty_schema(pg_database)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()

    async def rewrite() -> None:  # on a connection of its own, as another worker's
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("UPDATE meta SET value = '\"fresh\"' WHERE key = 'job:1'")
        finally:
            await conn.close()

    seen: list[Json] = []

    def done(key: str, value: Json) -> bool:
        seen.append(value)
        if value == "stale" and len(seen) == 1:  # (between the sweep's read and its lock)
            asyncio.run_coroutine_threadsafe(rewrite(), other).result(10)
        return value == "stale"

    store = SqlStore(pg_database)
    await store.open()
    try:
        await store.commit(Batch(meta={"job:1": "stale"}))
        assert await store.sweep_meta("job:", done) == 0
        assert seen == ["stale", "fresh"] and await store.meta("job:1") == "fresh"
        assert await store.sweep_meta("job:", lambda _, v: v == "fresh") == 1
    finally:
        await store.close()
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()
