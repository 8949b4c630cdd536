"""The SQLite group-commit writer: a bounded WAL under sustained writes, clean failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from switchgear.core.model import Device, StatusKind, StatusRecord
from switchgear.core.ports import Batch
from switchgear.storage import SqlStore, sqlitewriter

T0 = 1_700_000_000.0


def rows(device_id: int, account_id: int, start: int, n: int) -> list[StatusRecord]:
    data = {"power": 812.4, "voltage": 240.1, "note": "x" * 200}
    kind = StatusKind.UPDATE
    return [
        StatusRecord(f"s{i}", device_id, T0 + i, kind, "auto", data, None, account_id)
        for i in range(start, start + n)
    ]


async def test_the_wal_stays_bounded_under_a_sustained_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlitewriter, "WAL_RESET_ROWS", 2_000)
    monkeypatch.setattr(sqlitewriter, "CHECKPOINT_ROWS", 500)
    db = tmp_path / "h.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    try:
        account = await store.add_account("w@example.com", "W", "x")
        device = await store.add_device(Device(0, account.id, "SPG1", "SHPLG-1", "p", T0))
        sizes = []
        for start in range(0, 80_000, 1_000):  # batches above INLINE_ROWS: the writer thread
            await store.commit(Batch(statuses=rows(device.id, account.id, start, 1_000)))
            sizes.append(os.path.getsize(f"{db}-wal"))  # noqa: ASYNC240 - a stat, in a test
        page = await store.history([device.id], T0, T0 + 50_000, None, 10)
        assert page.records[0].id == "s0"
    finally:
        await store.close()
    # 80,000 rows of ~300 bytes went in (~25 MB of pages); the log kept starting over
    assert max(sizes) < 4_000_000, sizes


async def test_a_failing_batch_raises_its_own_error_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'f.db'}")
    await store.open()
    try:
        account = await store.add_account("f@example.com", "F", "x")
        device = await store.add_device(Device(0, account.id, "SPG2", "SHPLG-1", "p", T0))
        with pytest.raises(Exception, match="FOREIGN KEY"):  # NVRAM of no device
            await store.commit(Batch(statuses=rows(device.id, account.id, 0, 3),
                                     nvram={999_999: {"v": 1}}))  # fmt: skip
        await store.commit(Batch(statuses=rows(device.id, account.id, 10, 2)))
        page = await store.history([device.id], T0, T0 + 100, None, 10)
        assert [r.id for r in page.records] == ["s10", "s11"]  # nothing of the failed batch
    finally:
        await store.close()
