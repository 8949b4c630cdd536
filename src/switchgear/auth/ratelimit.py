"""A sliding-window counter on an injected clock (failed sign-ins, polling limits)."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from switchgear.core.clock import Clock
from switchgear.errors import RateLimited


class SlidingWindow:
    """At most `limit` hits per key within `window_s` seconds."""

    def __init__(self, limit: int, window_s: float, clock: Clock) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}

    def _live(self, key: Hashable) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        horizon = self._clock.now() - self.window_s
        while hits and hits[0] <= horizon:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def count(self, key: Hashable) -> int:
        return len(self._live(key))

    def check(self, key: Hashable) -> None:
        """RateLimited (with retry_after) if `key` is at its limit."""
        hits = self._live(key)
        if len(hits) >= self.limit:
            retry = hits[0] + self.window_s - self._clock.now()
            raise RateLimited("too many attempts; try again later", retry_after=max(retry, 0.0))

    def hit(self, key: Hashable) -> float:
        """Count one hit now; its time stamp, to `release` it later."""
        at = self._clock.now()
        self._hits.setdefault(key, deque()).append(at)
        return at

    def release(self, key: Hashable, at: float) -> None:
        """Take back one hit counted at `at` (a reserved attempt that turned out good)."""
        hits = self._hits.get(key)
        if hits is not None and at in hits:
            hits.remove(at)
            if not hits:
                del self._hits[key]

    def reset(self, key: Hashable) -> None:
        self._hits.pop(key, None)

    def sweep(self) -> None:
        """Forget keys whose hits have all aged out (bounds memory under a flood)."""
        for key in list(self._hits):
            self._live(key)
