"""Timers: a million pending relay flips in one process — memory per timer, firing lateness.

    python -m bench.timers [--timers 1000000] [--window 10]

Each timer is what a relay channel arms for an auto-off or `on_for`: a PendingFlip and a
scheduler entry. They fall due spread evenly over `--window` seconds of the system clock
(the virtual clock at speed 1), starting two seconds after the last is armed; each
firing records how late it ran. The baseline for memory is the process before arming.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from switchgear.core.clock import VirtualClock
from switchgear.core.scheduler import Scheduler
from switchgear.devices.relay import PendingFlip


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def arm(scheduler: Scheduler, n: int, first_due: float, window: float,
        fire: Callable[[PendingFlip], None]) -> list[PendingFlip]:  # fmt: skip
    pending: list[PendingFlip] = []  # a relay channel holds its pending flip
    step = window / n
    for i in range(n):
        flip = PendingFlip(first_due + i * step, i % 2 == 0, "auto")
        pending.append(flip)
        scheduler.call_at(flip.due, fire, flip)
    return pending


def memory(n: int) -> tuple[float, float]:
    """Bytes per armed timer: resident memory (measured first, untraced), then traced
    Python allocations (tracemalloc's own bookkeeping would inflate the first)."""
    clock = VirtualClock(speed=1.0)
    gc.collect()
    rss0 = rss_bytes()
    kept = arm(Scheduler(clock), n, clock.now() + 3600, 10.0, lambda flip: None)
    rss = rss_bytes() - rss0
    del kept
    gc.collect()
    tracemalloc.start()
    kept = arm(Scheduler(clock), n, clock.now() + 3600, 10.0, lambda flip: None)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return traced / n, rss / n


async def lateness(n: int, window: float) -> tuple[list[float], float]:
    """Arm `n` timers due over `window` seconds from two seconds after arming; run them."""
    clock = VirtualClock(speed=1.0)
    scheduler = Scheduler(clock)
    late: list[float] = []
    done = asyncio.Event()

    def fire(flip: PendingFlip) -> None:
        late.append(clock.now() - flip.due)
        if len(late) == n:
            done.set()

    t0 = time.perf_counter()
    first_due = clock.now() + 2.0 + n * 2e-6  # the lead covers arming (≈1-2 µs each)
    kept = arm(scheduler, n, first_due, window, fire)
    arm_s = time.perf_counter() - t0
    if clock.now() > first_due:
        raise SystemExit("arming took longer than the lead time")
    scheduler.start()
    await done.wait()
    await scheduler.stop()
    del kept
    return sorted(late), arm_s


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timers", type=int, default=1_000_000)
    ap.add_argument("--window", type=float, default=10.0)
    args = ap.parse_args()
    traced, rss = memory(args.timers)
    late, arm_s = await lateness(args.timers, args.window)
    ms = [x * 1000 for x in late]
    print(json.dumps({
        "timers": args.timers,
        "arm_seconds": round(arm_s, 2),
        "bytes_per_timer_traced": round(traced, 1),
        "bytes_per_timer_rss": round(rss, 1),
        "lateness_ms_p50": round(ms[len(ms) // 2], 3),
        "lateness_ms_p99": round(ms[int(len(ms) * 0.99)], 3),
        "lateness_ms_max": round(ms[-1], 3),
        "due_per_second": round(args.timers / args.window),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
