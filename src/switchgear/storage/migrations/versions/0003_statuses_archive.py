"""Status history gains an archive clustered by (device, time); rows move there in bulk.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statuses_archive",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", BigId, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("channel", sa.Integer),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("account_id", BigId),
        sa.PrimaryKeyConstraint("device_id", "ts", "seq", name="pk_statuses_archive"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_statuses_archive_account_ts", "statuses_archive", ["account_id", "ts", "seq"]
    )
    # rows already recorded stay in `statuses`; the store's first move archives them


def downgrade() -> None:
    op.execute(
        "INSERT INTO statuses (seq, id, device_id, ts, kind, reason, channel, data, account_id) "
        "SELECT seq, id, device_id, ts, kind, reason, channel, data, account_id "
        "FROM statuses_archive"
    )
    op.drop_index("ix_statuses_archive_account_ts", "statuses_archive")
    op.drop_table("statuses_archive")
