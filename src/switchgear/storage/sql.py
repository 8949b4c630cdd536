"""SqlStore: the Store port on SQLAlchemy 2 Core, for SQLite and PostgreSQL."""

from __future__ import annotations

from switchgear.storage.accounts import AccountRows
from switchgear.storage.commits import Commits
from switchgear.storage.history import HistoryReads
from switchgear.storage.metarows import MetaRows
from switchgear.storage.registry import DeviceRows


class SqlStore(AccountRows, DeviceRows, HistoryReads, Commits, MetaRows):
    """Durable storage; writes are serialised (SQLite has one writer) and batched by the journal."""
