"""Garbage collection for a long-running server: freeze what startup built, collect less often.

Under load the collector's full passes walked the whole fleet (twins, registry, caches)
every few hundred milliseconds: 16 % of the server's time on `/provider/send`, with
pauses of 40-60 ms that were the p99. Freezing the startup heap takes it out of every
pass, and a larger first threshold lets short-lived request garbage die by refcount
before a pass ever starts. docs/performance.md has the measurements.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 20, 20)  # allocations before a young pass; young passes per older one
BEHIND_MAX = 1_000_000  # allocations past the last pass: then a pass, burst or not
HOLD_TICK_S = 0.05  # how often a process looks whether a burst holds its passes


@contextmanager
def tuned() -> Iterator[None]:
    """Freeze the heap as it stands and raise the thresholds, with the collector on (a
    start may have paused it); undo all three on exit."""
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    gc.enable()
    try:
        yield
    finally:
        if not enabled:
            gc.disable()
        gc.set_threshold(*before)
        gc.unfreeze()  # let what the server built be collected again (tests start many)


@contextmanager
def paused() -> Iterator[None]:
    """No collector passes while a start builds the fleet: what it makes lives on, and the
    passes walked the growing heap (half of a 20,000-device start's CPU, docs/performance.md)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def held_while(busy: Callable[[], bool]) -> None:
    """Hold the automatic passes while `busy()` (a burst: a grid step's trips being
    logged, sent, recorded), BEHIND_MAX allowing; they run again once it is not. Only a
    hold of its own is undone (a start that paused the collector keeps it paused).

    A burst's objects live until it is through: trips waiting to be logged, reports
    queued, NVRAM and status records under commit. Passes in it walked them only to find
    them alive (a 10,000-controller FFR burst: 11 % of the fleets' CPU, 23 passes in the
    server) and promoted them to be walked again; after it, reference counting has freed
    them. Outside a burst the passes are the usual ones: a command stream's latency
    depends on their staying small (docs/performance.md)."""
    mine = False
    try:
        while True:
            await asyncio.sleep(HOLD_TICK_S)
            hold = busy() and gc.get_count()[0] < BEHIND_MAX
            if hold and not mine and gc.isenabled():
                gc.disable()
                mine = True
            elif mine and not hold:
                gc.enable()
                mine = False
    finally:
        if mine:
            gc.enable()


def settle() -> None:
    """Freeze what was built since the start froze the heap (twins booted after it), if the
    server's tuning is on: no pass need walk them again."""
    if gc.get_threshold() == THRESHOLDS:
        gc.freeze()
