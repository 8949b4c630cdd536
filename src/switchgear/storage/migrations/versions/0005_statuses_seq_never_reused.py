"""SQLite never hands out a status `seq` twice: the recent table gets AUTOINCREMENT.

Without it SQLite numbers a new row max(rowid) + 1, so once a move to the archive
emptied `statuses` the numbering started over at 1, and history's cursor, which breaks
ties in time by `seq`, skipped rows that shared a time and a number with another
segment's. The table is rebuilt with AUTOINCREMENT and its counter set past every `seq`
in either table. PostgreSQL's sequence never restarts (TRUNCATE keeps it): nothing to do.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = "seq, id, device_id, ts, kind, reason, channel, data, account_id"
INDEXES = (
    "CREATE INDEX ix_statuses_device_ts ON statuses (device_id, ts, seq)",
    "CREATE INDEX ix_statuses_account_ts ON statuses (account_id, ts, seq)",
)


def _rebuild(seq: str) -> None:
    """Rebuild `statuses` with `seq` declared as given, its rows and indexes intact."""
    op.execute(
        f"CREATE TABLE statuses_rebuilt (seq {seq}, id VARCHAR(32) NOT NULL, "
        "device_id INTEGER NOT NULL, ts FLOAT NOT NULL, kind VARCHAR(32) NOT NULL, "
        "reason VARCHAR(64) NOT NULL, channel INTEGER, data JSON NOT NULL, account_id INTEGER)"
    )
    op.execute(f"INSERT INTO statuses_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM statuses")
    op.execute("DROP TABLE statuses")  # its indexes go with it
    op.execute("ALTER TABLE statuses_rebuilt RENAME TO statuses")
    for index in INDEXES:
        op.execute(index)


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    _rebuild("INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT")
    op.execute("DELETE FROM sqlite_sequence WHERE name = 'statuses'")
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'statuses', coalesce(max(a), 0) FROM "
        "(SELECT max(seq) AS a FROM statuses UNION ALL SELECT max(seq) FROM statuses_archive)"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    _rebuild("INTEGER NOT NULL PRIMARY KEY")
