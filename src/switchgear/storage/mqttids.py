"""The MQTT id a device row is stored under (`devices.mqtt_id`): unique across the deployment.

A twin in a fleet process and an adopted Shelly are each an MQTT client under their id,
and a broker keeps one session a client id: two devices under one id would take each
other's session at every connect. The column's unique index decides between two workers
registering at once; it costs no write beyond the device's own row.

Ids differing in case only are one (`fold`): a Shelly's id is its MAC, spelled in upper
case by a Gen1 device and in lower case by a Gen2, so the index is on lower(mqtt_id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import Device
from switchgear.errors import MqttIdTaken
from switchgear.links import twinwire
from switchgear.links.shelly import fold
from switchgear.storage import tables as t

INDEX = "uq_devices_mqtt_id_lower"  # on lower(mqtt_id) (tables.py; 0010)
CHUNK = 1000  # ids asked in one IN (...): well below SQLite's and asyncpg's parameter limits


def stored_mqtt_id(device: Device) -> str | None:
    """A twin's MQTT id (chosen at registration, else derived), an adopted device's, or
    None for a device that is no MQTT client (a polled meter)."""
    if device.simulated:
        return twinwire.mqtt_id(device)
    mqtt_id = device.attrs.get("mqtt_id")
    return mqtt_id if isinstance(mqtt_id, str) else None


def clash(err: IntegrityError) -> bool:
    """Whether the refused write broke the MQTT id's uniqueness (not the serial's)."""
    return "mqtt_id" in str(err.orig)  # SQLite and PostgreSQL name the index (INDEX)


def repeated(ids: Iterable[str]) -> set[str]:
    """The ids that occur more than once in `ids`, in any case: each as spelled there."""
    ids = list(ids)
    counts = Counter(map(fold, ids))
    return {i for i in ids if counts[fold(i)] > 1}


async def taken_among(conn: AsyncConnection, devices: Sequence[Device]) -> MqttIdTaken:
    """The clash as an error naming the devices' ids stored already in any case (or
    repeated among them), each as the devices spell it (the spelling their callers look
    for): read after the refused write, on the clash's path alone."""
    ids = [i for i in map(stored_mqtt_id, devices) if i is not None]
    taken = repeated(ids)
    unique = sorted({fold(i) for i in ids})
    folded = sa.func.lower(t.devices.c.mqtt_id)  # the index's expression: read through it
    stored: set[str] = set()
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        found = await conn.execute(sa.select(folded).where(folded.in_(chunk)))
        stored.update(found.scalars())
    taken.update(i for i in ids if fold(i) in stored)
    return MqttIdTaken(taken, "this MQTT id is taken")
