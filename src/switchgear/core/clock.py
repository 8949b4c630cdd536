"""Clocks: the one source of "now" (UTC epoch seconds) for timers, devices and faces."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What everything that needs the time reads."""

    def now(self) -> float:
        """Current time, UTC epoch seconds."""
        ...

    def real_delay(self, seconds: float) -> float | None:
        """Wall seconds until `seconds` of this clock pass; None if it never moves by itself."""
        ...

    @property
    def manual(self) -> bool:
        """True if time moves only when advanced."""
        ...

    def pin(self) -> float | None:
        """Hold `now()` at this instant until `unpin(the value returned)`."""
        ...

    def unpin(self, held: float | None) -> None: ...


class SystemClock:
    """The wall clock (never pinned: nothing simulated reads it)."""

    manual = False

    def now(self) -> float:
        return time.time()

    def real_delay(self, seconds: float) -> float | None:
        return max(0.0, seconds)

    def pin(self) -> float | None:
        return None

    def unpin(self, held: float | None) -> None:
        pass


class VirtualClock:
    """A clock that starts at `start` and runs `speed` times as fast; speed 0 is manual.

    A manual clock moves only through `set()` (the scheduler's `advance()` steps it
    from timer to timer so every timer fires at exactly its due time).
    """

    def __init__(self, start: float | None = None, speed: float = 0.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._base = time.time() if start is None else start
        self._mono = time.monotonic()
        self._held: float | None = None  # `now()` while a handler runs (`pin`)

    @property
    def manual(self) -> bool:
        return self.speed == 0

    def now(self) -> float:
        if self._held is not None:
            return self._held
        if self.speed == 0:
            return self._base
        return self._base + (time.monotonic() - self._mono) * self.speed

    def pin(self) -> float | None:
        """Hold `now()` at this instant until `unpin`: a handler (a timer, a device's
        reaction) runs at one instant, as firmware does, and its readings agree (a twin
        read at microseconds apart stepped its physics for each). Returns the hold before
        (nested pins keep the outer instant), to give back to `unpin`."""
        held = self._held
        if held is None and self.speed:
            self._held = self.now()
        return held

    def unpin(self, held: float | None) -> None:
        self._held = held

    def real_delay(self, seconds: float) -> float | None:
        if self.speed == 0:
            return None
        return max(0.0, seconds) / self.speed

    def set(self, t: float) -> None:
        """Move the clock to `t` (never backwards)."""
        now = self.now()
        if t < now:
            return
        self._base = t
        self._mono = time.monotonic()
