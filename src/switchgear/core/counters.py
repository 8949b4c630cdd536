"""Counters that limit abuse: the port, and its in-memory implementation.

A counter is a (scope, key) pair holding a count in a window. The first add after
the last window ended opens a new one, counting from zero, that ends when the caller
says (`now + window` for a rolling limit, midnight for a daily quota). Every limit
check is one atomic call (`add` with `limit` counts only if the count stays within
it), so concurrent attempts meet a limit one by one, in one process or many.

In one process the counters live in memory (`MemoryCounters`: its calls never
suspend, so a check done before a face's first real await stays atomic); with
PostgreSQL they live in the database (`storage/counters.py`), shared by every worker.
Times are whatever clock the caller counts on (wall time for sign-ins).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

MAX_KEYS = 100_000  # memory: past this many keys, the scope's ended ones are swept

# every scope, by the clock its windows run on (a sweep reads that clock)
SIGNIN_ADDRESS, SIGNIN_PAIR = "signin.address", "signin.pair"
SIGNIN_ACCOUNT, SIGNIN_KNOWN = "signin.account", "signin.known"
REGISTRATIONS = "registrations"
MULTISOCKET_QUOTA = "multisocket.quota"
PIN_ADDRESS, PIN_METER, PIN_TRUSTED = "pin.address", "pin.meter", "pin.trusted"
METER_SLOT = "meterhttp.slot"
WALL_SCOPES = (SIGNIN_ADDRESS, SIGNIN_PAIR, SIGNIN_ACCOUNT, SIGNIN_KNOWN)
SERVER_CLOCK_SCOPES = (
    REGISTRATIONS, MULTISOCKET_QUOTA, PIN_ADDRESS, PIN_METER, PIN_TRUSTED, METER_SLOT
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tally:
    """A counter's state: its count, when its window ends, whether the add was counted."""

    count: int
    ends: float
    admitted: bool = True


class Counters(Protocol):
    """Windowed counters keyed by (scope, key)."""

    async def add(
        self, scope: str, key: str, now: float, ends: float, n: int = 1, limit: int | None = None
    ) -> Tally:
        """Add `n` (a window that ended restarts at 0 and ends at `ends`); with `limit`,
        only if the count stays within it, else nothing is added (`admitted` False)."""
        ...

    async def peek(self, scope: str, key: str, now: float) -> Tally:
        """The counter now (count 0 when it has none or its window ended)."""
        ...

    async def take(self, scope: str, key: str, n: int = 1) -> None:
        """Give back `n` counted (never below 0): an attempt that turned out good."""
        ...

    async def mark(self, scope: str, key: str, ends: float) -> None:
        """Set the count to 1 in a window ending at `ends` (a "seen until" stamp)."""
        ...

    async def clear(self, scope: str, key: str) -> None:
        """Forget the counter."""
        ...

    async def sweep(self, scopes: Collection[str], now: float) -> int:
        """Forget the scopes' counters whose window ended; how many."""
        ...


class MemoryCounters:
    """The Counters port in one process's memory (the embedded default)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], list[float]] = {}  # -> [count, ends]

    async def add(
        self, scope: str, key: str, now: float, ends: float, n: int = 1, limit: int | None = None
    ) -> Tally:
        if len(self._rows) > MAX_KEYS:
            await self.sweep((scope,), now)
        row = self._rows.get((scope, key))
        if row is None or row[1] <= now:
            row = [0, ends]
        count = int(row[0])
        if limit is not None and count + n > limit:
            return Tally(count, row[1], admitted=False)
        row[0] = count + n
        self._rows[(scope, key)] = row
        return Tally(count + n, row[1])

    async def peek(self, scope: str, key: str, now: float) -> Tally:
        row = self._rows.get((scope, key))
        if row is None or row[1] <= now:
            return Tally(0, now)
        return Tally(int(row[0]), row[1])

    async def take(self, scope: str, key: str, n: int = 1) -> None:
        row = self._rows.get((scope, key))
        if row is not None:
            row[0] = max(int(row[0]) - n, 0)

    async def mark(self, scope: str, key: str, ends: float) -> None:
        self._rows[(scope, key)] = [1, ends]

    async def clear(self, scope: str, key: str) -> None:
        self._rows.pop((scope, key), None)

    async def sweep(self, scopes: Collection[str], now: float) -> int:
        ended = [k for k, row in self._rows.items() if row[1] <= now and k[0] in scopes]
        for k in ended:
            del self._rows[k]
        return len(ended)
