"""PostgreSQL's small group commits as one statement: all or nothing, as the big ones."""

from __future__ import annotations

import asyncpg
import pytest

from switchgear.core.model import CommandRecord, CommandState
from switchgear.core.ports import Batch
from switchgear.storage import SqlStore, pgone
from tests.storage.conftest import empty_schema
from tests.storage.test_store import device, status

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["one-statement", "copy-in-a-transaction"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The commit's way: one statement (a small batch's), or COPY in a transaction."""
    if request.param != "one-statement":
        monkeypatch.setattr(pgone, "ONE_STATEMENT_ROWS", 0)
    return str(request.param)


@pytest.fixture
async def store(pg_database: str) -> SqlStore:
    await empty_schema(pg_database)
    s = SqlStore(pg_database)
    await s.open()
    yield s  # type: ignore[misc]
    await s.close()


def command(device_id: int, account_id: int, state: CommandState) -> CommandRecord:
    return CommandRecord("c1", device_id, account_id, "switch", {"action": "on"}, state, 1.0,
                         2.0, {"codes": []} if state is CommandState.DONE else None)  # fmt: skip


async def test_a_failing_batch_writes_nothing(store: SqlStore, path: str) -> None:
    a = await store.add_account("a@x.io", "A", "h")
    d = await store.add_device(device(a.id, "S1"))
    bad = Batch(statuses=[status(1, d.id, 5.0)], nvram={d.id + 999: {"relay": [True]}},
                commands={"c1": command(d.id, a.id, CommandState.DONE)},
                meta={"clock": 5.0})  # fmt: skip
    with pytest.raises(Exception, match="foreign key"):  # NVRAM of no device
        await store.commit(bad)
    assert await store.command("c1") is None and await store.meta("clock") is None
    assert not (await store.history([d.id], 0, 10)).records and await store.nvram() == {}
    await store.commit(Batch(statuses=[status(2, d.id, 6.0)]))  # the link is usable again
    assert [r.id for r in (await store.history([d.id], 0, 10)).records] == ["s2"]


async def test_either_way_a_batch_reads_back_the_same(store: SqlStore, path: str) -> None:
    a = await store.add_account("a@x.io", "A", "h")
    d = await store.add_device(device(a.id, "S1"))
    await store.commit(Batch(statuses=[status(i, d.id, 5.0 + i) for i in range(3)],
                             nvram={d.id: {"relay": [True], "n": None}},
                             commands={"c1": command(d.id, a.id, CommandState.SENT)},
                             meta={"clock": 5.0, "other": {"a": [1, 2]}}))  # fmt: skip
    await store.commit(Batch(nvram={d.id: {"relay": [False]}},
                             commands={"c1": command(d.id, a.id, CommandState.DONE)},
                             meta={"clock": 9.5}))  # fmt: skip
    got = await store.command("c1")
    assert got is not None and got.state is CommandState.DONE and got.result == {"codes": []}
    assert await store.nvram() == {d.id: {"relay": [False]}}
    assert await store.meta("clock") == 9.5 and await store.meta("other") == {"a": [1, 2]}
    page = await store.history([d.id], 0, 100)
    assert [(r.id, r.ts, r.channel, r.data) for r in page.records] == [
        (f"s{i}", 5.0 + i, 0, {"on": i % 2 == 0}) for i in range(3)
    ]


async def test_commits_go_on_after_postgresql_drops_their_connection(
    store: SqlStore, pg_database: str
) -> None:
    a = await store.add_account("a@x.io", "A", "h")
    d = await store.add_device(device(a.id, "S1"))
    await store.commit(Batch(statuses=[status(1, d.id, 1.0)]))
    admin = await asyncpg.connect(pg_database)
    try:  # an administrator's kill, a failover: every other connection of the database
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    with pytest.raises(Exception):  # noqa: B017 (the journal retries a failed commit)
        await store.commit(Batch(statuses=[status(2, d.id, 2.0)]))
    await store.commit(Batch(statuses=[status(2, d.id, 2.0)]))
    assert [r.id for r in (await store.history([d.id], 0, 10)).records] == ["s1", "s2"]
