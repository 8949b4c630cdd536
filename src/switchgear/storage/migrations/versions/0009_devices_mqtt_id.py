"""Devices get their MQTT id in a column of its own, unique: one broker client an id.

Each device stored already gets the id it has been using (a twin's chosen or derived one,
an adopted device's own), so no twin changes its id. Should two devices already share
one (two workers placed them at once, before this index), the first keeps it in the
column and the later ones are logged; their ids are not changed here either.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

from switchgear.core.model import Device
from switchgear.storage.mqttids import stored_mqtt_id

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)
STEP = 10_000  # rows read and updated at a time


def _mqtt_id(row: Any) -> str | None:
    attrs = row.attrs if isinstance(row.attrs, dict) else {}
    device = Device(row.id, row.account_id, row.serial, row.model, row.name, 0.0,
                    (), attrs, bool(row.simulated))  # fmt: skip
    try:
        return stored_mqtt_id(device)
    except Exception:  # a model no longer in the catalogue: it is no client of the broker
        log.warning("device %s (model %s): no MQTT id", row.id, row.model)
        return None


def upgrade() -> None:
    op.add_column("devices", sa.Column("mqtt_id", sa.String(64)))
    conn = op.get_bind()
    devices = sa.table(
        "devices", sa.column("id"), sa.column("account_id"), sa.column("serial"),
        sa.column("model"), sa.column("name"), sa.column("attrs", sa.JSON),
        sa.column("simulated"), sa.column("mqtt_id"),
    )  # fmt: skip
    seen: dict[str, int] = {}
    last = 0
    while True:
        rows = conn.execute(
            sa.select(devices).where(devices.c.id > last).order_by(devices.c.id).limit(STEP)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        kept: list[dict[str, Any]] = []
        for row in rows:
            mqtt_id = _mqtt_id(row)
            if mqtt_id is None:
                continue
            if mqtt_id in seen:
                log.warning("devices %s and %s share MQTT id %s", seen[mqtt_id], row.id, mqtt_id)
                continue
            seen[mqtt_id] = row.id
            kept.append({"key": row.id, "value": mqtt_id})
        if kept:
            conn.execute(
                devices.update().where(devices.c.id == sa.bindparam("key"))
                .values(mqtt_id=sa.bindparam("value")),
                kept,
            )  # fmt: skip
    op.create_index("uq_devices_mqtt_id", "devices", ["mqtt_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_devices_mqtt_id", "devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("mqtt_id")
