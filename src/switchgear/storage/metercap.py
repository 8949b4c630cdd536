"""The per-account cap on polled meters, checked inside the write that adds them.

A check before the write (the poller's count) lets two processes registering meters for
one account at once both pass it. On PostgreSQL the write locks the accounts' rows first
(FOR NO KEY UPDATE: other devices' inserts still go on), so two such writes take turns and
the second counts the first's meters; SQLite's writes are one process's, one at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear.core.model import Device
from switchgear.errors import MetersCapped
from switchgear.storage import tables as t


def polled(device: Device) -> bool:
    """Whether the device is a meter the server polls over HTTP (links/meterpoll.py)."""
    return not device.simulated and "url" in device.attrs


def _new(devices: Sequence[Device]) -> Counter[int]:
    return Counter(d.account_id for d in devices if polled(d))


def meters_capped(stored: Iterable[Device], devices: Sequence[Device], most: int) -> None:
    """MetersCapped if an account would poll more than `most` meters with `devices` added."""
    new = _new(devices)
    if not new:
        return
    have = Counter(d.account_id for d in stored if d.account_id in new and polled(d))
    if any(have[a] + n > most for a, n in new.items()):
        raise MetersCapped(most)


async def check(conn: AsyncConnection, devices: Sequence[Device], most: int | None) -> None:
    """In the write's transaction: lock the accounts of `devices`' meters, then count their
    stored meters; MetersCapped past `most` (nothing to do without a meter among them)."""
    new = _new(devices)
    if most is None or not new:
        return
    accounts = sorted(new)
    lock = (
        sa.select(t.accounts.c.id)
        .where(t.accounts.c.id.in_(accounts))
        .order_by(t.accounts.c.id)
        .with_for_update(key_share=True)  # ignored by SQLite, whose writes take turns
    )
    await conn.execute(lock)
    has_url = (
        sa.text("(devices.attrs -> 'url') IS NOT NULL")
        if conn.dialect.name == "postgresql"
        else sa.text("json_type(devices.attrs, '$.url') IS NOT NULL")
    )
    counted = sa.select(t.devices.c.account_id, sa.func.count()).where(
        t.devices.c.account_id.in_(accounts), sa.not_(t.devices.c.simulated), has_url
    )
    rows = await conn.execute(counted.group_by(t.devices.c.account_id))
    have: dict[int, int] = {int(a): int(n) for a, n in rows}
    if any(have.get(a, 0) + n > most for a, n in new.items()):
        raise MetersCapped(most)
