"""What several server processes share through the database (PostgreSQL only)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from switchgear.core.counters import Counters
from switchgear.core.ports import Store
from switchgear.storage.counters import SqlCounters
from switchgear.storage.sql import SqlStore


def is_shared(store: Store) -> bool:
    """Whether other server processes may use this store at once (an open PostgreSQL one)."""
    return isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql"


def shared_engine(store: Store) -> AsyncEngine | None:
    """The database engine other server processes share (PostgreSQL), else None."""
    return store.engine if isinstance(store, SqlStore) and is_shared(store) else None


def shared_counters(store: Store) -> Counters | None:
    """The database's counters when workers share it; None for one process (SQLite,
    memory), where the counters stay in memory: no round trip on the hot path."""
    return SqlCounters(store.engine) if isinstance(store, SqlStore) and is_shared(store) else None
