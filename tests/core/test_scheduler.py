"""The scheduler fires timers at exactly their due times on the virtual clock."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from switchgear.core.clock import SystemClock, VirtualClock
from switchgear.core.scheduler import Scheduler

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0, speed=0)


async def test_timers_fire_in_due_order_at_their_due_time(clock: VirtualClock) -> None:
    sched = Scheduler(clock)
    fired: list[tuple[str, float]] = []
    for name, delay in (("c", 30.0), ("a", 10.0), ("b", 20.0)):
        sched.call_later(delay, lambda n: fired.append((n, clock.now())), name)
    await sched.advance(25)
    assert fired == [("a", T0 + 10), ("b", T0 + 20)]
    assert clock.now() == T0 + 25
    await sched.advance(5)
    assert fired[-1] == ("c", T0 + 30)


async def test_a_timer_set_by_a_timer_fires_within_the_same_advance(clock: VirtualClock) -> None:
    sched = Scheduler(clock)
    fired: list[float] = []

    def chain(n: int) -> None:
        fired.append(clock.now() - T0)
        if n:
            sched.call_later(5, chain, n - 1)

    sched.call_later(5, chain, 3)
    await sched.advance(60)
    assert fired == [5, 10, 15, 20]


async def test_cancelled_timer_never_fires(clock: VirtualClock) -> None:
    sched = Scheduler(clock)
    fired: list[int] = []
    t = sched.call_later(1, fired.append, 1)
    sched.call_later(2, fired.append, 2)
    t.cancel()
    assert not t.active
    await sched.advance(10)
    assert fired == [2]


async def test_a_failing_callback_does_not_stop_the_others(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sched = Scheduler(clock)
    fired: list[int] = []

    def boom(_: object) -> None:
        raise RuntimeError("boom")

    sched.call_later(1, boom)
    sched.call_later(2, fired.append, 2)
    await sched.advance(3)
    assert fired == [2]
    assert "timer callback failed" in caplog.text


async def test_advance_refuses_a_clock_that_runs_by_itself() -> None:
    with pytest.raises(RuntimeError):
        await Scheduler(SystemClock()).advance(1)


async def test_the_sleeper_fires_on_a_fast_scaled_clock() -> None:
    clock = VirtualClock(start=T0, speed=10_000)  # 1 s of device time = 0.1 ms
    sched = Scheduler(clock)
    done = asyncio.Event()
    sched.call_later(2.0, lambda _: done.set())
    sched.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=2)
    finally:
        await sched.stop()
    assert clock.now() >= T0 + 2.0


def test_virtual_clock_scaled_and_manual() -> None:
    manual = VirtualClock(start=T0, speed=0)
    assert manual.manual and manual.now() == T0 and manual.real_delay(10) is None
    manual.set(T0 - 5)  # never backwards
    assert manual.now() == T0
    fast = VirtualClock(start=T0, speed=60)
    assert not fast.manual and fast.real_delay(60) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        VirtualClock(speed=-1)


async def test_soon_runs_after_every_timer_due_now_and_advance_drains_it(
    clock: VirtualClock,
) -> None:
    sched = Scheduler(clock)
    order: list[str] = []

    def trip(name: str) -> None:
        order.append(f"open {name}")
        sched.soon(lambda: order.append(f"report {name}"))

    for name in ("a", "b", "c"):
        sched.call_later(10, trip, name)
    await sched.advance(10)
    # every relay opens before any report, and the reports keep their order
    assert order == ["open a", "open b", "open c", "report a", "report b", "report c"]


async def test_soon_on_a_running_scheduler_yields_to_timers_and_drained_waits(
    clock: VirtualClock,
) -> None:
    sched = Scheduler(clock)
    sched.start()
    ran: list[int] = []
    try:
        for i in range(1000):
            sched.soon(lambda i=i: ran.append(i))
        assert ran == []  # queued, not run inline, once the sleeper runs
        await asyncio.wait_for(sched.drained(), 5)
        assert ran == list(range(1000))
    finally:
        await sched.stop()


async def test_a_bare_scheduler_runs_soon_at_once(clock: VirtualClock) -> None:
    sched = Scheduler(clock)
    ran: list[int] = []
    sched.soon(lambda: ran.append(1))
    assert ran == [1]


async def test_shared_timers_share_one_heap_entry_and_cancel_alone(clock: VirtualClock) -> None:
    sched = Scheduler(clock)
    fired: list[int] = []
    due = T0 + 1.0
    timers = [sched.call_at(due, fired.append, i, shared=True) for i in range(5)]
    assert len(sched) == 1
    timers[2].cancel()
    assert not timers[2].active and timers[3].active
    await sched.advance(1)
    assert fired == [0, 1, 3, 4]
    assert not timers[0].active
    # a shared timer set after the group fired starts a new group
    sched.call_at(clock.now() + 1, fired.append, 9, shared=True)
    await sched.advance(1)
    assert fired[-1] == 9


@pytest.mark.parametrize("lane", ["shared timers", "soon callbacks"])
async def test_a_batch_of_reactions_runs_without_collections_and_restores_the_collector(
    clock: VirtualClock, lane: str
) -> None:
    """A grid step's trips (one shared instant) and their logs (the `soon` lane) make
    short-lived garbage only: no collection starts in the middle of either."""
    sched = Scheduler(clock)
    collections: list[int] = []
    inside = False

    def noted(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and inside:
            collections.append(info["generation"])

    def trip(_: object = None) -> None:
        nonlocal inside
        inside = True
        [{"a": []} for _ in range(50)]  # garbage that would start collections
        inside = False

    before = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # a collection at every allocation, were the collector on
    gc.callbacks.append(noted)
    try:
        for _ in range(20):
            if lane == "shared timers":
                sched.call_at(T0 + 1.0, trip, shared=True)
            else:
                sched._later.append(trip)
        if lane == "shared timers":
            await sched.advance(1)
        else:
            assert sched.run_later() == 20
    finally:
        gc.callbacks.remove(noted)
        gc.set_threshold(*before)
    assert collections == []
    assert gc.isenabled()


async def test_a_timer_re_armed_at_now_without_progress_is_reported_not_spun(
    clock: VirtualClock,
) -> None:
    sched = Scheduler(clock)
    fired: list[float] = []
    others: list[float] = []

    class Stuck:
        def check(self, _: object = None) -> None:  # re-arms for the same instant forever
            fired.append(clock.now())
            sched.call_at(clock.now(), self.check)

        def via_soon(self, _: object = None) -> None:  # the same loop through `soon`
            sched.soon(lambda: sched.call_at(clock.now(), self.via_soon))

    sched.call_later(10, Stuck().check)
    sched.call_later(20, Stuck().via_soon)
    sched.call_later(30, lambda _: others.append(clock.now()))
    await asyncio.wait_for(sched.advance(60), 5)
    assert 1000 <= len(fired) <= 1002 and set(fired) == {T0 + 10}
    assert others == [T0 + 30]  # the rest of the timeline still runs
    assert len(sched.loops) == 2
    assert "Stuck.check" in sched.loops[0] and "Stuck.via_soon" in sched.loops[1]


async def test_many_timers_set_for_now_by_one_callback_are_not_a_loop(
    clock: VirtualClock,
) -> None:
    sched = Scheduler(clock)
    fired: list[int] = []

    def fan_out(_: object) -> None:
        for i in range(5000):  # a fleet's worth, each its own argument
            sched.call_at(clock.now(), fired.append, i)

    sched.call_later(5, fan_out)
    await sched.advance(10)
    assert len(fired) == 5000 and sched.loops == []


def _two_reads(clock: VirtualClock, into: list[tuple[float, float]]) -> None:
    """A handler reading the clock twice, a little apart in wall time."""
    first = clock.now()
    until = time.monotonic() + 0.002
    while time.monotonic() < until:
        pass
    into.append((first, clock.now()))


async def test_a_timer_and_a_deferred_callback_each_run_at_one_instant() -> None:
    """On a running clock, a handler's readings agree (a twin's meter, relay and state of
    one reaction carry one instant); the clock runs on between handlers."""
    clock = VirtualClock(start=T0, speed=1.0)
    sched = Scheduler(clock)
    reads: list[tuple[float, float]] = []
    sched.call_later(0.0, lambda _: _two_reads(clock, reads))
    sched.run_due(clock.now() + 1e-3)
    sched.soon(lambda: _two_reads(clock, reads))  # (no sleeper: runs at once, unpinned)
    sched._later.append(lambda: _two_reads(clock, reads))
    sched.run_later()
    (timer_first, timer_second), (free_first, free_second), (later_first, later_second) = reads
    assert timer_first == timer_second and later_first == later_second
    assert free_second - free_first >= 0.002  # outside a handler the clock runs
    assert later_first > timer_first and clock.now() > later_second


def test_a_pin_inside_a_pin_keeps_the_outer_instant() -> None:
    clock = VirtualClock(start=T0, speed=1.0)
    outer = clock.pin()
    at = clock.now()
    inner = clock.pin()
    assert clock.now() == at
    clock.unpin(inner)
    assert clock.now() == at  # still the outer handler's
    clock.unpin(outer)
    time.sleep(0.001)
    assert clock.now() > at
