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


class SystemClock:
    """The wall clock."""

    manual = False

    def now(self) -> float:
        return time.time()

    def real_delay(self, seconds: float) -> float | None:
        return max(0.0, seconds)


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

    @property
    def manual(self) -> bool:
        return self.speed == 0

    def now(self) -> float:
        if self.speed == 0:
            return self._base
        return self._base + (time.monotonic() - self._mono) * self.speed

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
