"""Meta rows past their use, swept by every server: fired Shelly timers' claims, the
claims of records every worker makes alike, import jobs' records past their hour.

Each kind is a row of EXPIRIES: its key prefix and when a row of it may go, on the wall
clock (the times the rows carry are wall-clock: workers share no other). What is kept for
good has no row: FFR group ids (`ffr:group-id:N`; an id once given is never given again,
even after its group is deleted, so events keep naming one group) and FFR event ids and
reports (`ffr:id:N`, the events' record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchgear import importjobs
from switchgear.core.clock import Clock
from switchgear.core.model import Json
from switchgear.core.ports import Store
from switchgear.links import shellygroup

log = logging.getLogger(__name__)

SWEEP_S = 300.0  # wall seconds between two sweeps of one server


@dataclass(frozen=True, slots=True)
class Expiry:
    """Meta rows under `prefix`; `ends(key, value)`: the wall-clock time a row may go."""

    prefix: str
    ends: Callable[[str, Json], float]


EXPIRIES = (
    Expiry(shellygroup.TIMER_CLAIM, shellygroup.claim_ends),
    Expiry(shellygroup.RECORD_CLAIM, shellygroup.claim_ends),
    Expiry(importjobs.PREFIX, importjobs.record_ends),
)


async def sweep(store: Store, now: float, expiries: Sequence[Expiry] = EXPIRIES) -> int:
    """Delete every row whose end is at or before `now` (wall-clock seconds): how many."""
    gone = 0
    for e in expiries:
        gone += await store.sweep_meta(e.prefix, _past(e, now))
    return gone


def _past(e: Expiry, now: float) -> Callable[[str, Json], bool]:
    return lambda key, value: e.ends(key, value) <= now


async def keep_swept(store: Store, wall: Clock, every_s: float = SWEEP_S) -> None:
    """Sweep at once, then every `every_s` wall seconds, until cancelled."""
    while True:
        try:
            gone = await sweep(store, wall.now())
        except Exception:  # a database hiccup: the next sweep takes them
            log.warning("meta sweep failed", exc_info=True)
        else:
            if gone:
                log.info("meta sweep: %d rows past their use deleted", gone)
        await asyncio.sleep(every_s)
