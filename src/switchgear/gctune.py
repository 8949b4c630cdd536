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
QUIET_TICK_S = 0.25  # how often a process whose passes wait for quiet looks for it
BEHIND_MAX = 1_000_000  # allocations past the last pass: then a pass, quiet or not
HOLD_TICK_S = 0.05  # how often a server looks whether a burst holds its passes


@contextmanager
def tuned(*, automatic: bool = True) -> Iterator[None]:
    """Freeze the heap as it stands and raise the thresholds, with the collector on (a
    start may have paused it); undo all three on exit. `automatic` False: no pass starts
    by itself, `when_quiet` makes them (a fleet process)."""
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if automatic:
        gc.enable()
    else:
        gc.disable()
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


async def when_quiet(quiet: Callable[[], bool]) -> None:
    """Run the collector's passes at quiet moments only (`tuned(automatic=False)`).

    A fleet process's work comes in bursts (a grid step trips every controller at once)
    whose objects live until they are sent: reports queued, NVRAM being committed, trips
    waiting to be logged. Passes in the burst walked them only to find them alive (11 % of
    a fleet's CPU in a 10,000-controller FFR burst, none of it garbage); once the burst is
    sent, reference counting has freed them. docs/performance.md has the figures."""
    passes = 0
    while True:
        await asyncio.sleep(QUIET_TICK_S)
        passes += collect_if_quiet(quiet(), passes)


def collect_if_quiet(quiet: bool, passes: int) -> int:
    """One pass if enough was allocated since the last and the process is quiet (or it is
    BEHIND_MAX behind, quiet or not): as old a generation as the thresholds would have
    reached by now. Returns the passes made (0 or 1)."""
    young = gc.get_count()[0]
    if young < THRESHOLDS[0] or (not quiet and young < BEHIND_MAX):
        return 0
    n = passes + 1
    older, oldest = THRESHOLDS[1], THRESHOLDS[1] * THRESHOLDS[2]
    gc.collect(2 if n % oldest == 0 else 1 if n % older == 0 else 0)
    return 1


async def held_while(busy: Callable[[], bool]) -> None:
    """Hold the automatic passes while `busy()` (a server recording a burst), BEHIND_MAX
    allowing; they run again once it is not. Only a hold of its own is undone (a start
    that paused the collector keeps it paused)."""
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
