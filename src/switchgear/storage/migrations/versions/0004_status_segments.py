"""The archive holds sorted segments: a move appends one instead of touching every device.

The archive's key gains a leading segment number, and `status_segments` records each
segment's time span. Rows archived by 0003 become segment 1 (already in device order).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = "seq, id, device_id, ts, kind, reason, channel, data, account_id"


def _status_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", BigId, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("channel", sa.Integer),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("account_id", BigId),
    ]


def _set_aside(old: str) -> None:
    """Rename the archive out of the way (PostgreSQL names its key's index after it)."""
    op.drop_index("ix_statuses_archive_account_ts", "statuses_archive")
    op.rename_table("statuses_archive", old)
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX pk_statuses_archive RENAME TO pk_{old}")


def upgrade() -> None:
    op.create_table(
        "status_segments",
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("min_ts", sa.Float, nullable=False),
        sa.Column("max_ts", sa.Float, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_status_segments_max_ts", "status_segments", ["max_ts"])
    _set_aside("statuses_archive_0003")
    op.create_table(
        "statuses_archive",
        sa.Column("segment", sa.BigInteger, nullable=False),
        *_status_columns(),
        sa.PrimaryKeyConstraint("segment", "device_id", "ts", "seq", name="pk_statuses_archive"),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO statuses_archive (segment, {COLUMNS}) SELECT 1, {COLUMNS} "
        "FROM statuses_archive_0003 ORDER BY device_id, ts, seq"
    )
    op.execute(
        "INSERT INTO status_segments (id, min_ts, max_ts, rows) "
        "SELECT 1, lo, hi, n FROM (SELECT min(ts) AS lo, max(ts) AS hi, count(*) AS n "
        "FROM statuses_archive_0003) AS span WHERE n > 0"  # (HAVING alone needs SQLite 3.39)
    )
    op.drop_table("statuses_archive_0003")
    op.create_index(
        "ix_statuses_archive_account_ts", "statuses_archive", ["account_id", "ts", "seq"]
    )


def downgrade() -> None:
    _set_aside("statuses_archive_0004")
    op.create_table(
        "statuses_archive",
        *_status_columns(),
        sa.PrimaryKeyConstraint("device_id", "ts", "seq", name="pk_statuses_archive"),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO statuses_archive ({COLUMNS}) SELECT {COLUMNS} "
        "FROM statuses_archive_0004 ORDER BY device_id, ts, seq"
    )
    op.drop_table("statuses_archive_0004")
    op.drop_table("status_segments")
    op.create_index(
        "ix_statuses_archive_account_ts", "statuses_archive", ["account_id", "ts", "seq"]
    )
