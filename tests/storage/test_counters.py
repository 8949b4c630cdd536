"""The Counters port: one suite for memory, SQLite and PostgreSQL (shared by workers)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from switchgear.core.counters import Counters, MemoryCounters
from switchgear.storage import SqlStore
from switchgear.storage.counters import SqlCounters
from tests.storage.conftest import empty_schema

T0 = 1_700_000_000.0
# counters on the same backing data: with a database, each call is another worker's
Make = Callable[[], Awaitable[Counters]]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Make]:
    if request.param == "memory":
        shared = MemoryCounters()

        async def same() -> Counters:
            return shared

        yield same
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    stores: list[SqlStore] = []

    async def new() -> Counters:
        store = SqlStore(url)
        await store.open()
        stores.append(store)
        return SqlCounters(store.engine)

    yield new
    for store in stores:
        await store.close()


async def test_a_limit_admits_up_to_it_then_refuses_until_the_window_ends(make: Make) -> None:
    one, two = await make(), await make()
    for n in range(1, 4):
        tally = await (one if n % 2 else two).add("s", "k", T0 + n, T0 + 60, limit=3)
        assert tally.admitted and tally.count == n and tally.ends == T0 + 60
    refused = await two.add("s", "k", T0 + 10, T0 + 70, limit=3)
    assert not refused.admitted and refused.count == 3 and refused.ends == T0 + 60
    assert (await one.peek("s", "k", T0 + 59)).count == 3
    assert (await one.peek("s", "k", T0 + 60)).count == 0  # the window ended
    fresh = await one.add("s", "k", T0 + 60, T0 + 120, limit=3)
    assert fresh.admitted and fresh.count == 1 and fresh.ends == T0 + 120
    assert (await two.peek("s", "other", T0)).count == 0  # keys and scopes are apart
    assert (await two.peek("t", "k", T0 + 61)).count == 0


async def test_an_add_of_several_is_all_or_none(make: Make) -> None:
    c = await make()
    assert (await c.add("s", "k", T0, T0 + 60, n=4, limit=5)).count == 4
    refused = await c.add("s", "k", T0, T0 + 60, n=2, limit=5)
    assert not refused.admitted and refused.count == 4
    assert not (await c.add("s", "new", T0, T0 + 60, n=6, limit=5)).admitted
    assert (await c.peek("s", "new", T0)).count == 0


async def test_take_mark_clear_and_sweep(make: Make) -> None:
    one, two = await make(), await make()
    await one.add("s", "k", T0, T0 + 60, n=2)
    await two.take("s", "k")
    assert (await one.peek("s", "k", T0)).count == 1
    await two.take("s", "k", 5)
    assert (await one.peek("s", "k", T0)).count == 0  # never below zero
    await one.mark("seen", "k", T0 + 30)
    await two.mark("seen", "k", T0 + 90)  # a later stamp moves the end
    assert (await one.peek("seen", "k", T0 + 60)).count == 1
    await one.add("s", "gone", T0, T0 + 10)
    await two.clear("s", "gone")
    assert (await one.peek("s", "gone", T0)).count == 0
    await one.add("s", "old", T0, T0 + 10)
    await one.add("other", "old", T0, T0 + 10)
    assert await two.sweep(["s"], T0 + 10) == 1  # s/old ended; other/old is not in scope
    assert (await one.peek("other", "old", T0)).count == 1
    assert (await one.peek("seen", "k", T0 + 60)).count == 1


async def test_concurrent_adds_from_two_workers_meet_the_limit_one_by_one(make: Make) -> None:
    one, two = await make(), await make()
    tries = [(one if i % 2 else two).add("s", "burst", T0, T0 + 60, limit=5) for i in range(20)]
    tallies = await asyncio.gather(*tries)
    assert sum(t.admitted for t in tallies) == 5
    assert (await one.peek("s", "burst", T0)).count == 5


async def test_keys_of_any_length_count_apart(make: Make) -> None:
    one, two = await make(), await make()
    # an address or e-mail from a request (no length limit before it is counted), random
    # enough that the database cannot compress it into an index entry
    long = [secrets.token_urlsafe(6000) for _ in range(2)]
    for n in (1, 2):
        assert (await (one, two)[n - 1].add("s", long[0], T0, T0 + 60, limit=2)).count == n
    assert not (await one.add("s", long[0], T0, T0 + 60, limit=2)).admitted
    assert (await two.add("s", long[1], T0, T0 + 60, limit=2)).count == 1
    assert (await one.peek("s", long[0], T0)).count == 2
    await two.take("s", long[0])
    await one.mark("t", long[0], T0 + 60)
    assert (await two.peek("s", long[0], T0)).count == 1
    assert (await two.peek("t", long[0], T0)).count == 1
    await one.clear("s", long[0])
    assert (await two.peek("s", long[0], T0)).count == 0


async def test_a_key_holding_a_nul_counts_apart_from_one_without(make: Make) -> None:
    # an e-mail or meter devid from a request, counted before it is looked at: PostgreSQL
    # keeps no NUL in text, so such a key must still count, not fail the request
    one, two = await make(), await make()
    nul, plain = "ann@example.com\x00\n192.0.2.1", "ann@example.com\n192.0.2.1"
    assert (await one.add("s", nul, T0, T0 + 60, limit=2)).count == 1
    assert (await two.add("s", nul, T0, T0 + 60, limit=2)).count == 2
    assert not (await one.add("s", nul, T0, T0 + 60, limit=2)).admitted
    assert (await two.add("s", plain, T0, T0 + 60, limit=2)).count == 1
    await one.take("s", nul)
    await two.mark("t", nul, T0 + 60)
    assert (await one.peek("s", nul, T0)).count == 1
    assert (await one.peek("t", nul, T0)).count == 1
    await two.clear("s", nul)
    assert (await one.peek("s", nul, T0)).count == 0
    assert (await one.peek("s", plain, T0)).count == 1
