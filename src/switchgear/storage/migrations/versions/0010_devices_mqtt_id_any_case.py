"""A device's MQTT id is unique whatever its case: the unique index is on lower(mqtt_id).

A Shelly's id is its MAC, which Gen1 devices spell in upper case and Gen2 in lower case
(links/shelly.py `canonical_mqtt_id`): ids differing in case only are one device's. 0009's
index told them apart, so two workers adopting one device at once, one as each
generation, both stored it. Should two devices already hold ids differing in case only,
the first (the lowest device id) keeps its id in the column and the later ones leave the
column, logged, as 0009 did with a race's repeated id; their attrs, and so the id they
are on the broker under, are not changed (an operator removes the duplicate adoption).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)
OLD = "uq_devices_mqtt_id"
NEW = "uq_devices_mqtt_id_lower"


def upgrade() -> None:
    conn = op.get_bind()
    devices = sa.table("devices", sa.column("id"), sa.column("mqtt_id"))
    folded = sa.func.lower(devices.c.mqtt_id)
    shared = (
        sa.select(folded)
        .where(devices.c.mqtt_id.is_not(None))
        .group_by(folded)
        .having(sa.func.count() > 1)
    )  # one pass over the table; the rows read are the clashes' alone
    rows = conn.execute(
        sa.select(devices.c.id, devices.c.mqtt_id).where(folded.in_(shared)).order_by(devices.c.id)
    ).all()
    first: dict[str, tuple[int, str]] = {}
    later: list[int] = []
    for key, mqtt_id in rows:
        kept = first.setdefault(mqtt_id.lower(), (key, mqtt_id))
        if kept[0] != key:
            log.warning("devices %s and %s share MQTT id %s (as %s), in case only",
                        kept[0], key, kept[1], mqtt_id)  # fmt: skip
            later.append(key)
    if later:
        conn.execute(devices.update().where(devices.c.id.in_(later)).values(mqtt_id=None))
    op.drop_index(OLD, "devices")
    op.create_index(NEW, "devices", [sa.text("lower(mqtt_id)")], unique=True)


def downgrade() -> None:
    op.drop_index(NEW, "devices")
    op.create_index(OLD, "devices", ["mqtt_id"], unique=True)
