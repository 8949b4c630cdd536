"""The scheduler fires timers at exactly their due times on the virtual clock."""

from __future__ import annotations

import asyncio

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
