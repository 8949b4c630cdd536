"""The device registry in SQL: devices added, listed and updated, and their NVRAM."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import Device, Json
from switchgear.errors import Conflict
from switchgear.storage import metercap, mqttids
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import SqlBase


class DeviceRows(SqlBase):
    """The devices and nvram tables."""

    # --- registry -----------------------------------------------------------

    async def add_device(self, device: Device, *, meters_most: int | None = None) -> Device:
        stmt = t.devices.insert().values(**_device_row(device))
        try:
            async with self._write, self.engine.begin() as conn:
                await metercap.check(conn, [device], meters_most)
                res: Any = await conn.execute(stmt)
        except IntegrityError as err:
            await self._mqtt_id_clash(err, [device])
            raise Conflict(
                f"a device with serial {device.serial!r} exists", field="serial"
            ) from None
        return Device(**{**_device_fields(device), "id": int(res.inserted_primary_key[0])})

    async def add_devices(
        self, devices: Sequence[Device], *, meters_most: int | None = None
    ) -> list[Device]:
        if not devices:
            return []
        # ids taken first, then one plain executemany: RETURNING in parameter order made
        # SQLAlchemy insert row by row on SQLite
        try:
            async with self._write, self.engine.begin() as conn:
                await metercap.check(conn, devices, meters_most)
                ids = await _new_device_ids(conn, len(devices))
                rows = [{"id": i, **_device_row(d)} for d, i in zip(devices, ids, strict=True)]
                await conn.execute(t.devices.insert(), rows)
        except IntegrityError as err:
            await self._mqtt_id_clash(err, devices)
            raise Conflict("a device with one of these serials exists", field="serial") from None
        return [dataclasses.replace(d, id=i) for d, i in zip(devices, ids, strict=True)]

    async def _mqtt_id_clash(self, err: IntegrityError, devices: Sequence[Device]) -> None:
        """MqttIdTaken naming the taken ids when the MQTT id's index refused the write, or
        when another index did but an id is taken too (a second adoption of one Shelly
        clashes on its serial first): a refused write's path, never the common one."""
        async with self.engine.connect() as conn:
            taken = await mqttids.taken_among(conn, devices)
        if taken.taken or mqttids.clash(err):
            raise taken from None

    async def devices(self, ids: Sequence[int] | None = None) -> list[Device]:
        query = sa.select(t.devices).order_by(t.devices.c.id)
        if ids is not None:
            query = query.where(t.devices.c.id.in_(sorted(set(ids))))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Device(
                id=r.id,
                account_id=r.account_id,
                serial=r.serial,
                model=r.model,
                name=r.name,
                created_at=r.created_at,
                tags=tuple(r.tags),
                attrs=dict(r.attrs),
                simulated=bool(r.simulated),
            )
            for r in rows
        ]

    async def nvram(self) -> dict[int, Json]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.nvram))).all()
        return {r.device_id: r.blob for r in rows}


async def _new_device_ids(conn: AsyncConnection, n: int) -> list[int]:
    """`n` device ids no one else is given: from PostgreSQL's sequence (other processes
    insert too); on SQLite after the largest (its writes are this process's, one at a
    time under the store's write lock)."""
    if conn.dialect.name == "postgresql":
        q = sa.text(
            "SELECT nextval(pg_get_serial_sequence('devices', 'id')) FROM generate_series(1, :n)"
        )
        return [int(r[0]) for r in await conn.execute(q, {"n": n})]
    top = (await conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.devices.c.id), 0)))).scalar()
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))


def _device_fields(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "account_id": d.account_id,
        "serial": d.serial,
        "model": d.model,
        "name": d.name,
        "created_at": d.created_at,
        "tags": d.tags,
        "attrs": d.attrs,
        "simulated": d.simulated,
    }


def _device_row(d: Device) -> dict[str, Any]:
    row = _device_fields(d)
    del row["id"]
    row["tags"] = list(d.tags)
    row["attrs"] = dict(d.attrs)
    row["mqtt_id"] = mqttids.stored_mqtt_id(d)
    return row
