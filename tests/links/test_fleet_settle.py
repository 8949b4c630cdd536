"""What a large fleet builds once lives on: frozen out of the collector's full passes, which
walked it all and stalled commands for most of a second (issue #22's p99)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path

import pytest

from switchgear import gctune
from switchgear.core.clock import VirtualClock
from switchgear.core.journal import Journal
from switchgear.core.model import Device
from switchgear.core.scheduler import Scheduler
from switchgear.links.fleetnode import SETTLE_EVERY, FleetNode, TwinClient
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage.memory import MemoryStore

SECRET = "test-secret-key-of-at-least-32-bytes"


def built(n: int) -> list[list[int]]:
    """Long-lived containers, as a connect or a registration leaves behind."""
    return [[i] for i in range(n)]  # (a dict of ints alone is not tracked)


def test_a_fleet_freezes_its_heap_once_every_twin_is_on_the_broker() -> None:
    node = FleetNode(MemoryStore(), "127.0.0.1", 1)
    for i in (1, 2):
        node.clients[i] = TwinClient(Device(i, 1, f"PC-{i}", "power-controller-v10", "", 0.0),
                                     node.sessions.session(f"c{i}"), f"c{i}")  # fmt: skip
    with gctune.tuned():
        kept = built(1000)
        frozen = gc.get_freeze_count()
        node._session_state(1, True)
        node._session_state(2, False)  # down is not up
        assert gc.get_freeze_count() == frozen  # one twin of two up: not yet
        node._session_state(2, True)
        assert gc.get_freeze_count() >= frozen + len(kept)  # all up: what they built is frozen
        node._session_state(2, True)  # a reconnect settles nothing more
        assert not any(o is kept for o in gc.get_objects())


def test_a_large_fleet_also_freezes_as_its_sessions_come_up() -> None:
    node = FleetNode(MemoryStore(), "127.0.0.1", 1)
    for i in range(1, SETTLE_EVERY + 2):
        node.clients[i] = TwinClient(Device(i, 1, f"PC-{i}", "power-controller-v10", "", 0.0),
                                     node.sessions.session(f"c{i}"), f"c{i}")  # fmt: skip
    with gctune.tuned():
        for i in range(1, SETTLE_EVERY):
            node._session_state(i, True)
        kept = built(1000)
        frozen = gc.get_freeze_count()
        node._session_state(SETTLE_EVERY, True)  # not all up, but a thousand more
        assert gc.get_freeze_count() >= frozen + len(kept)


async def test_a_bulk_registration_is_frozen_out_of_the_collectors_passes(tmp_path: Path) -> None:
    rt = await Runtime.start(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", speed=0,
                                      secret_key=SECRET, link="memory"))  # fmt: skip
    try:
        account = await rt.auth.create_account("g@example.com", "G", "correct horse G")
        with gctune.tuned():
            frozen = gc.get_freeze_count()
            made = await rt.add_devices([
                Device(0, account.id, f"SPG-GC-{i:03d}", "SHPLG-1", f"plug {i}", rt.clock.now())
                for i in range(20)
            ])  # fmt: skip
            assert gc.get_freeze_count() > frozen
            tracked = {id(o) for o in gc.get_objects()}
            assert not any(id(d) in tracked for d in made)  # out of every pass from now on
    finally:
        await rt.stop()


def test_a_fleets_collector_passes_wait_for_the_quiet_after_a_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            passes.append(info["generation"])

    monkeypatch.setattr(gctune, "BEHIND_MAX", 3 * gctune.THRESHOLDS[0])
    with gctune.tuned(automatic=False):
        assert not gc.isenabled()  # no pass starts by itself
        gc.callbacks.append(seen)
        try:
            burst = built(gctune.THRESHOLDS[0] + 100)
            assert gctune.collect_if_quiet(False, 0) == 0 and passes == []  # busy: not yet
            assert gctune.collect_if_quiet(True, 0) == 1 and passes == [0]  # quiet: young
            assert gctune.collect_if_quiet(True, 1) == 0  # nothing new since
            burst += built(3 * gctune.THRESHOLDS[0] + 100)
            assert gctune.collect_if_quiet(False, 1) == 1  # too far behind: busy or not
            burst += built(gctune.THRESHOLDS[0] + 100)
            gctune.collect_if_quiet(True, 19)  # the 20th pass reaches the older generation
            burst += built(gctune.THRESHOLDS[0] + 100)
            gctune.collect_if_quiet(True, 399)  # and the 400th, the oldest
        finally:
            gc.callbacks.remove(seen)
    assert passes == [0, 0, 1, 2] and len(burst) > 0


async def test_a_fleet_is_quiet_once_nothing_waits_to_be_reported_or_committed() -> None:
    node = FleetNode(MemoryStore(), "127.0.0.1", 1)
    clock = VirtualClock(start=0.0)
    node.scheduler, node.journal = Scheduler(clock), Journal(node.store, clock)  # (as `start`)
    device = Device(1, 1, "PC-1", "power-controller-v10", "", 0.0)
    tc = TwinClient(device, node.sessions.session("c1"), "c1")
    assert node.quiet()
    node.journal.put_nvram(1, dict)
    assert not node.quiet()  # NVRAM to commit first
    await node.journal.flush()  # (no writer running: committed inline)
    assert node.quiet()
    node._queue(tc, "c1/events/rpc", b"{}")
    assert not node.quiet()  # a report to send


async def test_a_servers_passes_are_held_while_a_burst_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gctune, "HOLD_TICK_S", 0.0)
    busy = [False]

    async def ticks(n: int = 3) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    with gctune.tuned():
        holder = asyncio.get_running_loop().create_task(gctune.held_while(lambda: busy[0]))
        try:
            await ticks()
            assert gc.isenabled()  # nothing recorded: passes as usual
            busy[0] = True
            await ticks()
            assert not gc.isenabled()  # a burst: held
            busy[0] = False
            await ticks()
            assert gc.isenabled()  # recorded: the passes run again
            busy[0] = True
            await ticks()
            monkeypatch.setattr(gctune, "BEHIND_MAX", gc.get_count()[0] + 1000)
            kept = built(2000)
            await ticks()
            assert gc.isenabled() and kept  # too far behind: passes, burst or not
            monkeypatch.setattr(gctune, "BEHIND_MAX", 1_000_000)
            busy[0] = False
            gc.disable()  # paused by someone else (a start)
            busy[0] = True
            await ticks()
            busy[0] = False
            await ticks()
            assert not gc.isenabled()  # the holder took no hold: it gives none back
            gc.enable()
            busy[0] = True
            await ticks()
            assert not gc.isenabled()
        finally:
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder
        assert gc.isenabled()  # stopped holding: given back
