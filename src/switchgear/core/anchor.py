"""The shared virtual clock: one anchor (wall, virtual, speed) in the database that every
process of a deployment reads, so a server and its fleet processes agree on "now"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from switchgear.core.clock import VirtualClock
from switchgear.core.ports import Batch, Store
from switchgear.errors import InvalidInput

log = logging.getLogger(__name__)

ANCHOR_KEY = "clock_anchor"
MANUAL_REFUSED = (
    "a manual clock (--speed 0) cannot be shared with fleet processes: start the server "
    "with --speed > 0, or keep its simulated devices in-process (SWITCHGEAR_FLEET=in-process)"
)


def clock_from(anchor: Mapping[str, Any]) -> VirtualClock:
    """The clock the anchor describes: at wall time `wall` it read `virtual`."""
    speed = float(anchor["speed"])
    now = float(anchor["virtual"]) + (time.time() - float(anchor["wall"])) * speed
    return VirtualClock(start=now, speed=speed)


def _valid(anchor: Any) -> bool:
    return isinstance(anchor, dict) and all(
        isinstance(anchor.get(k), (int, float)) for k in ("wall", "virtual", "speed")
    )


async def server_clock(store: Store, start: float, speed: float) -> VirtualClock:
    """The server's clock when fleet processes share it: the stored anchor if it runs at
    this speed, else a new anchor at `start` (fleet processes must then be restarted)."""
    if speed <= 0:
        raise InvalidInput(MANUAL_REFUSED, field="speed")
    anchor: Any = await store.meta(ANCHOR_KEY)
    if _valid(anchor) and float(anchor["speed"]) == speed:
        return clock_from(anchor)
    anchor = {"wall": time.time(), "virtual": start, "speed": speed}
    await store.commit(Batch(meta={ANCHOR_KEY: anchor}))
    return clock_from(anchor)


async def fleet_clock(store: Store, poll_s: float = 0.5) -> VirtualClock:
    """A fleet process's clock: waits for a server to set the anchor."""
    said = False
    while True:
        anchor: Any = await store.meta(ANCHOR_KEY)
        if _valid(anchor):
            return clock_from(anchor)
        if not said:
            log.info("waiting for a server to set the shared clock in the database")
            said = True
        await asyncio.sleep(poll_s)  # polling the database: wall time
