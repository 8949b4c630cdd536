"""Storage: the Store port on SQLite/PostgreSQL (SqlStore) and in memory (MemoryStore)."""

from __future__ import annotations

from switchgear.core.ports import Store
from switchgear.storage.memory import MemoryStore
from switchgear.storage.sql import SqlStore


def open_store(url: str) -> Store:
    """A store for `url`: `memory://`, `sqlite:///path.db` or `postgresql://...`."""
    if url.startswith("memory:"):
        return MemoryStore()
    return SqlStore(url)


__all__ = ["MemoryStore", "SqlStore", "open_store"]
