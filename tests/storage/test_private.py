"""Database files hold the signing key, meter PINs and demo passwords: owner-only (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from switchgear.core.ports import Batch
from switchgear.storage import SqlStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def present_modes(db: Path) -> list[int]:
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    return [mode(p) for p in files if p.exists()]


async def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    old = os.umask(0o022)  # the usual umask, under which SQLite creates files 0644
    try:
        store = SqlStore(f"sqlite:///{db}")
        await store.open()
        await store.commit(Batch(meta={"secret_key": "k" * 48}))
        assert present_modes(db) == [0o600, 0o600, 0o600]  # the database, its WAL and SHM
        await store.close()
    finally:
        os.umask(old)


async def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    await store.commit(Batch(meta={"secret_key": "k" * 48}))
    await store.close()
    os.chmod(db, 0o644)  # made by an earlier version
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    assert await store.meta("secret_key") == "k" * 48  # same data
    assert mode(db) == 0o600
    assert all(m == 0o600 for m in present_modes(db))
    await store.close()
