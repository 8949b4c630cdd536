"""The Store port's behaviour, the same on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from switchgear.core.accounts import Credential
from switchgear.core.model import CommandRecord, CommandState, Device, StatusKind, StatusRecord
from switchgear.core.ports import Batch, Store
from switchgear.errors import Conflict, InvalidInput
from tests.storage.conftest import StoreFactory


@asynccontextmanager
async def opened(make: StoreFactory) -> AsyncIterator[Store]:
    store = make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def device(account_id: int, serial: str, model: str = "SHPLG-1") -> Device:
    return Device(0, account_id, serial, model, f"dev {serial}", 1.0, ("kitchen",), {"k": "v"})


def status(i: int, device_id: int, ts: float) -> StatusRecord:
    return StatusRecord(f"s{i}", device_id, ts, StatusKind.RELAY, "api", {"on": i % 2 == 0}, 0)


async def test_accounts_and_devices_round_trip(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "$argon2id$hash")
        b = await store.add_account("b@x.io", "B", "$argon2id$hash2")
        assert a.id != b.id
        found = await store.account_by_email("b@x.io")
        assert found is not None and found[0].id == b.id and found[1] == "$argon2id$hash2"
        assert await store.account_by_email("nobody@x.io") is None
        with pytest.raises(Conflict):
            await store.add_account("a@x.io", "again", "h")
        d1 = await store.add_device(device(a.id, "S1"))
        d2 = await store.add_device(device(b.id, "S2", "D103"))
        assert d1.id != d2.id and d1.id > 0
        with pytest.raises(Conflict):
            await store.add_device(device(b.id, "S1"))
        listed = await store.devices()
        assert [(d.serial, d.account_id, d.tags, dict(d.attrs)) for d in listed] == [
            ("S1", a.id, ("kitchen",), {"k": "v"}),
            ("S2", b.id, ("kitchen",), {"k": "v"}),
        ]


async def test_devices_are_read_by_id_when_asked(make_store: StoreFactory) -> None:
    """Another worker's registration is read by key, not with the whole registry."""
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        made = await store.add_devices([device(a.id, f"S{i}") for i in range(5)])
        ids = [made[3].id, made[1].id, made[3].id, 10_000]  # a repeat and a missing one
        assert [d.serial for d in await store.devices(ids)] == ["S1", "S3"]
        assert await store.devices([]) == []
        assert [d.serial for d in await store.devices()] == [f"S{i}" for i in range(5)]


async def test_credentials_per_account_and_revocation(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        b = await store.add_account("b@x.io", "B", "h")
        for cid, acc in (("c1", a.id), ("c2", a.id), ("c3", b.id)):
            await store.add_credential(
                Credential(cid, acc, "native", "hash", 10.0, 100.0, scopes=("plug.read",))
            )
        assert {c.id for c in await store.credentials(a.id)} == {"c1", "c2"}
        assert len(await store.credentials()) == 3
        await store.revoke_credential("c1", 50.0)
        c1 = next(c for c in await store.credentials(a.id) if c.id == "c1")
        assert c1.revoked_at == 50.0 and c1.scopes == ("plug.read",)


async def test_a_batch_commits_statuses_nvram_commands_and_meta(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        d = await store.add_device(device(a.id, "S1"))
        cmd = CommandRecord(
            "c1", d.id, a.id, "switch", {"action": "on"}, CommandState.SENT, 1.0, 1.0
        )
        await store.commit(
            Batch(
                statuses=[status(1, d.id, 5.0), status(2, d.id, 5.0)],
                nvram={d.id: {"relay": [True]}},
                commands={"c1": cmd},
                meta={"clock": 5.0},
            )
        )
        done = CommandRecord(
            "c1", d.id, a.id, "switch", {"action": "on"}, CommandState.DONE, 1.0, 2.0,
            {"codes": []}, None,
        )  # fmt: skip
        await store.commit(Batch(nvram={d.id: {"relay": [False]}}, commands={"c1": done}))
        assert (await store.nvram()) == {d.id: {"relay": [False]}}
        got = await store.command("c1")
        assert got is not None and got.state is CommandState.DONE and got.result == {"codes": []}
        assert await store.command("nope") is None
        assert await store.meta("clock") == 5.0 and await store.meta("missing") is None
        page = await store.history([d.id], 0, 10)
        assert [r.id for r in page.records] == ["s1", "s2"]  # same ts: insertion order
        assert page.records[0].data == {"on": False} and page.records[0].kind is StatusKind.RELAY


async def test_meta_rows_are_listed_by_prefix_and_each_taken_once(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as one, opened(make_store) as two:  # two workers' stores
        rows = {"q/1/a": {"n": 1}, "q/1/b": {"n": 2}, "q%/c": {"n": 3}, "qq": {"n": 4}}
        await one.commit(Batch(meta=rows))
        assert await two.metas("q/") == {"q/1/a": {"n": 1}, "q/1/b": {"n": 2}}
        assert await two.metas("q%") == {"q%/c": {"n": 3}}  # a LIKE wildcard is a character
        taken = await asyncio.gather(*(s.take_meta(k) for s in (one, two) for k in ("q/1/a",) * 2))
        assert sorted(taken) == [False, False, False, True]
        assert await one.take_meta("q/1/a") is False and await one.meta("q/1/a") is None
        assert await one.metas("q/") == {"q/1/b": {"n": 2}}


async def test_a_meta_row_taken_with_its_value_is_taken_only_while_it_holds_that_value(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as one, opened(make_store) as two:  # two workers' stores
        old, new = {"at": [1.5, 0], "op": "off"}, {"at": [2.5, 0], "op": "on"}
        assert await one.claim("p/7", old) == old
        assert await two.claim("p/7", new) == old  # a row there stays (claim)
        assert await two.take_meta("p/7", new) is False and await one.meta("p/7") == old
        taken = await asyncio.gather(*(s.take_meta("p/7", old) for s in (one, two, one, two)))
        assert sorted(taken) == [False, False, False, True]
        assert await one.meta("p/7") is None and await two.take_meta("p/7", old) is False


async def test_history_window_and_cursor_paging(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        d1 = await store.add_device(device(a.id, "S1"))
        d2 = await store.add_device(device(a.id, "S2"))
        records = [status(i, d1.id if i % 3 else d2.id, 100.0 + i // 2) for i in range(40)]
        await store.commit(Batch(statuses=records[20:]))
        await store.commit(Batch(statuses=records[:20]))
        want = [r.id for r in sorted(records, key=lambda r: r.ts) if r.device_id == d1.id]
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.history([d1.id], 0, 1000, cursor, limit=4)
            seen += [r.id for r in page.records]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(want) and len(seen) == len(set(seen))
        assert [
            r.ts for r in (await store.history([d1.id], 0, 1000, limit=1000)).records
        ] == sorted(r.ts for r in records if r.device_id == d1.id)
        window = await store.history([d1.id, d2.id], 105.0, 110.0)
        assert {r.ts for r in window.records} == {105.0, 106.0, 107.0, 108.0, 109.0}
        with pytest.raises(InvalidInput) as err:
            await store.history([d1.id], 0, 1000, "not-a-cursor!")
        assert err.value.field == "cursor"


async def test_data_survives_reopening(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        d = await store.add_device(device(a.id, "S1"))
        await store.commit(Batch(statuses=[status(1, d.id, 1.0)], nvram={d.id: {"n": 1}}))
    async with opened(make_store) as again:  # also runs the migrations a second time
        assert [x.serial for x in await again.devices()] == ["S1"]
        assert await again.nvram() == {d.id: {"n": 1}}
        assert len((await again.history([d.id], 0, 10)).records) == 1


async def test_account_wide_history_pages_over_every_device_of_one_account(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        b = await store.add_account("b@x.io", "B", "h")
        mine = [await store.add_device(device(a.id, f"A{i}")) for i in range(3)]
        theirs = await store.add_device(device(b.id, "B0"))
        records = [
            replace(status(i, mine[i % 3].id, 100.0 + i), account_id=a.id) for i in range(30)
        ] + [replace(status(100 + i, theirs.id, 100.5 + i), account_id=b.id) for i in range(30)]
        await store.commit(Batch(statuses=records))
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.history(None, 0, 1000, cursor, limit=7, account_id=a.id)
            seen += [r.id for r in page.records]
            assert all(r.account_id == a.id for r in page.records)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [f"s{i}" for i in range(30)]  # ascending, every device, no other account
