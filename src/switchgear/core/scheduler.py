"""One timer heap and one sleeper per process; timers fire on the injected clock.

A fleet holds hundreds of thousands of pending timers (auto-off, delayed switch,
sample periods), so a timer is a small list in a heap, never an asyncio task.

Beside the heap is a lane for work that must not delay a timer (`soon`): a device's
report of something it already did. When a grid step trips 10,000 controllers, every
relay opens first and the status reports follow, in order, between timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from switchgear.core.clock import Clock, VirtualClock

log = logging.getLogger(__name__)

LATER_CHUNK = 128  # `soon` callbacks run between looks at the heap, in real time
LOOP_LIMIT = 1000  # one callback re-armed this often within one instant is a loop

# Heap entry layout: [due, seq, callback or None when cancelled, argument]
_DUE, _SEQ, _FN, _ARG = range(4)


class Timer:
    """Handle to one pending timer."""

    __slots__ = ("_entry",)

    def __init__(self, entry: list[Any]) -> None:
        self._entry = entry

    @property
    def due(self) -> float:
        return float(self._entry[_DUE])

    @property
    def active(self) -> bool:
        return self._entry[_FN] is not None

    def cancel(self) -> None:
        self._entry[_FN] = None
        self._entry[_ARG] = None


@contextlib.contextmanager
def _collector_held() -> Iterator[None]:
    """No cyclic collection while a batch of callbacks runs (one after, if it is due)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class Scheduler:
    """Fires callbacks at absolute times of `clock`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._advancing = asyncio.Lock()
        self._groups: dict[float, list[list[Any]]] = {}  # shared instants' timers
        self._later: deque[Callable[[], None]] = deque()
        self._drained = asyncio.Event()
        self._drained.set()
        # The loop guard: timers set during the instant being run, fired again and again
        # at that same instant, make no progress; past LOOP_LIMIT they are dropped.
        self._instant: float | None = None
        self._instant_seq = 0
        self._repeats: dict[tuple[int, Any, int], int] = {}
        self.loops: list[str] = []  # what the guard dropped, newest last

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(
        self, due: float, fn: Callable[[Any], None], arg: Any = None, *, shared: bool = False
    ) -> Timer:
        """Call `fn(arg)` when the clock reaches `due`.

        `shared`: many timers are expected at exactly this instant (a grid step reaching a
        whole fleet); they share one heap entry and fire in the order they were set.
        """
        entry = [due, next(self._seq), fn, arg]
        if shared:
            group = self._groups.get(due)
            if group is None:
                group = self._groups[due] = []
                self._push([due, entry[_SEQ], self._run_group, group])
            group.append(entry)
            return Timer(entry)
        self._push(entry)
        return Timer(entry)

    def _push(self, entry: list[Any]) -> None:
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._wake.set()

    def _run_group(self, group: list[list[Any]]) -> None:
        """Fire a shared instant's timers, the cyclic garbage collector held meanwhile.

        A grid step's 10,000 FFR trips allocate ~100,000 short-lived objects, which start
        a dozen collections in the middle of the trips (~10 ms, all of it delaying the
        last relay); their garbage dies by reference count anyway, and what is left
        waits for the next collection after the group.
        """
        if group and self._groups.get(group[0][_DUE]) is group:
            del self._groups[group[0][_DUE]]  # timers set from here on start a new group
        with _collector_held():
            for entry in group:
                fn = entry[_FN]
                if fn is None:
                    continue
                entry[_FN] = None
                self._fire(fn, entry[_ARG])

    def call_later(self, delay: float, fn: Callable[[Any], None], arg: Any = None) -> Timer:
        return self.call_at(self.clock.now() + delay, fn, arg)

    def soon(self, fn: Callable[[], None]) -> None:
        """Call `fn()` once every timer due now has fired (in order, after earlier ones).

        Without a running sleeper or an `advance` (a bare scheduler in tests), right away.
        """
        if self._task is None and not self._advancing.locked():
            fn()
            return
        self._later.append(fn)
        self._drained.clear()
        self._wake.set()

    def run_later(self, budget: int | None = None) -> int:
        """Run up to `budget` queued `soon` callbacks (all when None); returns how many ran.

        The collector is held meanwhile, as for a group of timers: the reports of a grid
        step's trips (logged here) made collections mid-chunk over garbage that dies by
        reference count (7 % of a fleet's CPU a trip, docs/performance.md)."""
        with _collector_held():
            return self._run_later(budget)

    def _run_later(self, budget: int | None) -> int:
        later, ran = self._later, 0
        while later and (budget is None or ran < budget):
            fn = later.popleft()
            ran += 1
            self._fire(fn, what="deferred callback failed")
        if not later:
            self._drained.set()
        return ran

    @property
    def waiting(self) -> int:
        """`soon` callbacks queued (thousands: a grid step's trips being logged)."""
        return len(self._later)

    async def drained(self) -> None:
        """Wait until every `soon` callback queued so far has run."""
        while self._later:
            await self._drained.wait()

    def next_due(self) -> float | None:
        self._drop_cancelled()
        return float(self._heap[0][_DUE]) if self._heap else None

    def run_due(self, now: float | None = None) -> int:
        """Fire every timer due at or before `now`; returns how many fired."""
        now = self.clock.now() if now is None else now
        if now != self._instant:
            self._instant, self._instant_seq = now, next(self._seq)
            self._repeats.clear()
        fired = 0
        heap = self._heap
        while heap and heap[0][_DUE] <= now:
            entry = heapq.heappop(heap)
            fn = entry[_FN]
            if fn is None:
                continue
            entry[_FN] = None
            if entry[_SEQ] > self._instant_seq and self._looping(fn, entry[_ARG], now):
                continue
            fired += 1
            self._fire(fn, entry[_ARG])
        return fired

    def _fire(
        self, fn: Callable[..., None], *arg: Any, what: str = "timer callback failed"
    ) -> None:
        """A callback, at one instant (the clock pinned while it runs)."""
        held = self.clock.pin()
        try:
            fn(*arg)
        except Exception:
            log.exception(what)
        finally:
            self.clock.unpin(held)

    def _looping(self, fn: Callable[[Any], None], arg: Any, now: float) -> bool:
        """True when `fn(arg)`, set during this instant, has fired here LOOP_LIMIT times.

        A timer re-armed at or before `now` without progress would spin the process
        forever and starve every face: it is dropped and reported instead.
        """
        owner = getattr(fn, "__self__", None)
        key = (id(owner), getattr(fn, "__func__", fn), id(arg))
        count = self._repeats.get(key, 0) + 1
        self._repeats[key] = count
        if count <= LOOP_LIMIT:
            return False
        if count == LOOP_LIMIT + 1:
            name = getattr(fn, "__qualname__", repr(fn))
            report = f"timer loop: {name} re-armed at t={now!r} {LOOP_LIMIT} times; dropped"
            self.loops.append(report)
            del self.loops[:-100]
            log.error(report)
        return True

    async def advance(self, seconds: float) -> float:
        """Move a manual VirtualClock forward, firing each timer at exactly its due time."""
        clock = self.clock
        if not isinstance(clock, VirtualClock) or not clock.manual:
            raise RuntimeError("advance needs a manual VirtualClock")
        async with self._advancing:
            target = clock.now() + seconds
            while True:
                due = self.next_due()
                if due is None or due > target:
                    break
                clock.set(due)
                self.run_due(due)
                self.run_later()
                await asyncio.sleep(0)  # let woken tasks see each step
            clock.set(target)
            self.run_later()
            return target

    def _drop_cancelled(self) -> None:
        heap = self._heap
        while heap and heap[0][_FN] is None:
            heapq.heappop(heap)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sleeper(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.run_later()  # reports of what devices did are never dropped

    async def _sleeper(self) -> None:
        while True:
            self._wake.clear()
            due = self.next_due()
            if due is not None and due <= self.clock.now():  # due now, even on a manual clock
                self.run_due()
                await asyncio.sleep(0)
                continue
            if self._later:  # reports, a chunk at a time, looking at the heap between
                self.run_later(LATER_CHUNK)
                await asyncio.sleep(0)
                continue
            delay = None if due is None else self.clock.real_delay(due - self.clock.now())
            if delay is None:
                await self._wake.wait()
                continue
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            self.run_due()
            await asyncio.sleep(0)
