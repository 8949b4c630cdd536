"""Counters that limit abuse (sign-in throttles, quotas, meter PINs), shared by workers.

An UNLOGGED table on PostgreSQL: counters need no durability, and every limit check
commits one write.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("ends", sa.Float, nullable=False),
    )
    op.create_index("ix_counters_ends", "counters", ["ends"])
    if op.get_bind().dialect.name == "postgresql":
        # no WAL: a check commits without waiting for the disk; a crash empties the
        # table, which only forgives the attempts of the last few minutes
        op.execute("ALTER TABLE counters SET UNLOGGED")


def downgrade() -> None:
    op.drop_index("ix_counters_ends", "counters")
    op.drop_table("counters")
