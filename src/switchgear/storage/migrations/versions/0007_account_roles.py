"""Accounts get a role: "tenant" (the default) or "operator".

The operator may do what affects every tenant (move the shared clock, read metrics).
A database that already holds accounts makes its first account the operator, as
`switchgear users add` does on an empty one.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("role", sa.String(16), nullable=False, server_default="tenant")
    )
    op.execute("UPDATE accounts SET role = 'operator' WHERE id = (SELECT min(id) FROM accounts)")


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("role")
