"""Failed meter PINs, counted per client address and per meter, apart from the request slot.

A wrong PIN never spends the meter's one request per interval (that would let a stranger
lock the owner out with one request a minute). Instead:
- an address with `PER_ADDRESS` failed PINs (any meter, unknown devids included) in
  `WINDOW_S` is refused, right PIN or not, until the window passes;
- a meter with `PER_METER` failed PINs from anywhere in `WINDOW_S` (a guess spread over
  many addresses) then answers only addresses that gave its right PIN in the last
  `TRUSTED_S`: its owner's poller keeps working, new addresses wait for the window.
"""

from __future__ import annotations

from collections import deque

from switchgear.core.clock import Clock

PER_ADDRESS = 5
PER_METER = 20
WINDOW_S = 600.0
TRUSTED_S = 86_400.0
MAX_TRACKED = 10_000  # keys kept before the ones long past are forgotten


class PinGuard:
    """Counts failed PINs; `refused` is asked before the PIN is even looked at."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._by_address: dict[str, deque[float]] = {}
        self._by_meter: dict[str, deque[float]] = {}
        self._trusted: dict[tuple[str, str], float] = {}

    def _live(self, table: dict[str, deque[float]], key: str) -> int:
        hits = table.get(key)
        if hits is None:
            return 0
        horizon = self._clock.now() - WINDOW_S
        while hits and hits[0] <= horizon:
            hits.popleft()
        if not hits:
            del table[key]
        return len(hits)

    def refused(self, address: str, devid: str) -> bool:
        """Whether this address, or this meter for a stranger, is out of guesses for now."""
        if self._live(self._by_address, address) >= PER_ADDRESS:
            return True
        if self._live(self._by_meter, devid) >= PER_METER:
            trusted = self._trusted.get((devid, address))
            return trusted is None or self._clock.now() - trusted > TRUSTED_S
        return False

    def failed(self, address: str, devid: str) -> None:
        now = self._clock.now()
        for table, key in ((self._by_address, address), (self._by_meter, devid)):
            if len(table) > MAX_TRACKED:
                self._forget(table)
            table.setdefault(key, deque()).append(now)

    def succeeded(self, address: str, devid: str) -> None:
        if len(self._trusted) > MAX_TRACKED:
            horizon = self._clock.now() - TRUSTED_S
            for key in [k for k, t in self._trusted.items() if t < horizon]:
                del self._trusted[key]
        self._trusted[(devid, address)] = self._clock.now()

    def _forget(self, table: dict[str, deque[float]]) -> None:
        for key in list(table):
            self._live(table, key)
