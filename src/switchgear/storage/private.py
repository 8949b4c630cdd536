"""Database files readable and writable by their owner only (they hold keys and secrets)."""

from __future__ import annotations

import os
from pathlib import Path

MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_sqlite(path: str) -> None:
    """Create the SQLite file `path` 0600 if missing, and take group and other access
    from it and its side files (SQLite creates those with the database file's mode)."""
    db = Path(path)
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db, os.O_CREAT | os.O_RDWR, MODE)  # an existing file keeps its content
    os.close(fd)
    for p in (db, *(Path(f"{db}{suffix}") for suffix in SIDE_FILES)):
        try:
            if p.stat().st_mode & 0o077:
                os.chmod(p, MODE)
        except FileNotFoundError:
            continue
