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
from switchgear.links.fleetnode import BURST, SETTLE_EVERY, FleetNode, TwinClient
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


async def test_a_fleet_is_in_a_burst_while_a_thousand_reports_wait() -> None:
    node = FleetNode(MemoryStore(), "127.0.0.1", 1)
    clock = VirtualClock(start=0.0)
    node.scheduler, node.journal = Scheduler(clock), Journal(node.store, clock)  # (as `start`)
    device = Device(1, 1, "PC-1", "power-controller-v10", "", 0.0)
    tc = TwinClient(device, node.sessions.session("c1"), "c1")
    assert not node.bursting()
    for _ in range(BURST // 2):  # trips to log (a running scheduler queues them)
        node.scheduler._later.append(lambda: None)
    assert not node.bursting()  # a few hundred: a command stream's, not a burst
    for _ in range(BURST - BURST // 2):
        node._queue(tc, "c1/events/rpc", b"{}")  # reports to send
    assert node.bursting()
    node.scheduler.run_later()
    assert not node.bursting()


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
