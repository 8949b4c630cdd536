"""`demo --fleet-size N`: the demo's first account topped up to N devices over the families."""

from __future__ import annotations

import logging

from switchgear.core.model import Device
from switchgear.onboarding import BATCH, RULES
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

# (model, serial pattern, name, tag) in turn: a plug, a strip, a water heater, two meters
KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("SHPLG-1", "SPGF{i:08d}", "Plug", "plug"),
    ("LG-MULTI-4", "LGMF{i:08d}", "Strip", "strip"),
    ("power-controller-v10", "PC-FLEET{i:08d}-001", "Water heater", "water-heater"),
    ("D101", "5{i:09d}", "Meter (D101)", "meter"),
    ("D103", "6{i:09d}", "Meter (D103)", "meter"),
)


def fleet_device(account_id: int, i: int, now: float) -> Device:
    """The i-th extra demo device (the same serial on every start: a top-up resumes)."""
    model, serial, name, tag = KINDS[i % len(KINDS)]
    attrs = dict(RULES[model].attrs())
    return Device(0, account_id, serial.format(i=i), model, f"{name} {i}", now,
                  ("fleet", tag), attrs)  # fmt: skip


async def grow(rt: Runtime, account_id: int, size: int) -> int:
    """Add simulated devices to the account until the server has `size` in all (none when
    it has as many already); the number added."""
    missing = size - len(rt.engine)
    added, i = 0, 0
    now = rt.clock.now()
    while added < missing:
        batch: list[Device] = []
        while len(batch) < min(BATCH, missing - added):
            d = fleet_device(account_id, i, now)
            i += 1
            if not rt.engine.serial_taken(d.serial):
                batch.append(d)
        added += len(await rt.add_devices(batch))
        log.info("demo fleet: %d of %d devices added", added, missing)
    return added
