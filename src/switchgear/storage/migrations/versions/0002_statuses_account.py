"""Statuses carry their account: account-wide status queries read one index range.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("statuses", sa.Column("account_id", BigId, nullable=True))
    op.execute(
        "UPDATE statuses SET account_id = "
        "(SELECT devices.account_id FROM devices WHERE devices.id = statuses.device_id)"
    )
    op.create_index("ix_statuses_account_ts", "statuses", ["account_id", "ts", "seq"])


def downgrade() -> None:
    op.drop_index("ix_statuses_account_ts", "statuses")
    op.drop_column("statuses", "account_id")
