"""SQLAlchemy Core tables: one schema for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("role", sa.String(16), nullable=False, server_default="tenant"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("desc", sa.String(200), nullable=False),
    sa.Column("attrs", sa.JSON, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("attrs", sa.JSON, nullable=False),
    sa.Column("simulated", sa.Boolean, nullable=False),
    # the MQTT client id the device is on the broker under (storage/mqttids.py; 0009):
    # unique, so two workers' registrations never end on one; NULL for a polled meter
    sa.Column("mqtt_id", sa.String(64)),
    sa.UniqueConstraint("serial", "model", name="uq_devices_serial_model"),
)
# whatever its case (0010): a Shelly's id is its MAC, in upper case or lower by generation
sa.Index("uq_devices_mqtt_id_lower", sa.func.lower(devices.c.mqtt_id), unique=True)

nvram = sa.Table(
    "nvram",
    metadata,
    sa.Column("device_id", BigId, sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("blob", sa.JSON, nullable=False),
)


def _status_columns() -> list[sa.Column[object]]:
    """A status record's columns after `seq` (the order every status row follows)."""
    return [
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_id", BigId, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("channel", sa.Integer),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("account_id", BigId),
    ]


# Status history in two tables (docs/architecture.md, "History"). New records append to
# `statuses` in arrival order, which a fleet's writes make cheap; every ARCHIVE_ROWS rows
# the store moves them to `statuses_archive` as one sorted segment: a segment's rows sit
# in (device, ts) order, and a new segment's key sorts after every older one, so a move
# appends instead of touching each device's range. A read of one device asks only the
# segments whose time span meets its range (`status_segments`): one short range each.
statuses = sa.Table(
    "statuses",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    *_status_columns(),
    sa.Index("ix_statuses_device_ts", "device_id", "ts", "seq"),
    sa.Index("ix_statuses_account_ts", "account_id", "ts", "seq"),
    sqlite_autoincrement=True,  # emptied by every move: a `seq` must never come back
)

statuses_archive = sa.Table(
    "statuses_archive",
    metadata,
    sa.Column("segment", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    *_status_columns(),
    sa.PrimaryKeyConstraint("segment", "device_id", "ts", "seq", name="pk_statuses_archive"),
    sa.Index("ix_statuses_archive_account_ts", "account_id", "ts", "seq"),
    sqlite_with_rowid=False,  # SQLite stores the rows in the key's order (PostgreSQL: see move)
)

# one row per archived segment: the time its statuses span, so a read skips the rest
status_segments = sa.Table(
    "status_segments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=False),
    sa.Column("min_ts", sa.Float, nullable=False),
    sa.Column("max_ts", sa.Float, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Index("ix_status_segments_max_ts", "max_ts"),
)

# read by id only; ids lead with the clock, so SQLite's rows sit in time order (0006)
commands = sa.Table(
    "commands",
    metadata,
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
    sqlite_with_rowid=False,
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON),
)

# abuse counters shared by every worker (core/counters.py; 0008); swept by `ends`
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("ends", sa.Float, nullable=False),
    sa.Index("ix_counters_ends", "ends"),
)
