"""Initial schema: accounts, credentials, devices, nvram, statuses, commands, meta.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("desc", sa.String(200), nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
    )
    op.create_index("ix_credentials_account_id", "credentials", ["account_id"])
    op.create_table(
        "devices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.UniqueConstraint("serial", "model", name="uq_devices_serial_model"),
    )
    op.create_index("ix_devices_account_id", "devices", ["account_id"])
    op.create_table(
        "nvram",
        sa.Column("device_id", BigId, sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("blob", sa.JSON, nullable=False),
    )
    op.create_table(
        "statuses",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", BigId, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("channel", sa.Integer),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_statuses_device_ts", "statuses", ["device_id", "ts", "seq"])
    op.create_table(
        "commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_commands_device_id", "commands", ["device_id"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON),
    )


def downgrade() -> None:
    for name in ("meta", "commands", "statuses", "nvram", "devices", "credentials", "accounts"):
        op.drop_table(name)
