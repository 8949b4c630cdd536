"""Sign-in throttling on wall time: refuse per client address, slow down per account.

Every attempt is counted before the first await (a reservation), so a burst of
concurrent attempts meets the limit one by one instead of all passing the check at
once; a good password gives its reservation back. The windows read a wall clock,
never the virtual clock a demo or a test moves.

- per client address, across every e-mail: ADDRESS_FAILURES per window, then 429;
- per (e-mail, address): PAIR_FAILURES per window, then 429;
- per account from anywhere: never refused (a lockout anyone could trigger would be a
  weapon); after ACCOUNT_FREE failures each attempt waits a delay that doubles up to
  ACCOUNT_MAX_DELAY_S, except from an address that signed in to it in the last 30 days.

The counts live behind the Counters port (core/counters.py): in memory in one process,
in PostgreSQL when several workers share it. A window opens at its key's first attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchgear.core.clock import Clock
from switchgear.core.counters import (
    SIGNIN_ACCOUNT as ACCOUNT,
)
from switchgear.core.counters import (
    SIGNIN_ADDRESS as ADDRESS,
)
from switchgear.core.counters import (
    SIGNIN_KNOWN as KNOWN,
)
from switchgear.core.counters import (
    SIGNIN_PAIR as PAIR,
)
from switchgear.core.counters import (
    WALL_SCOPES,
    Counters,
    MemoryCounters,
    Tally,
)
from switchgear.errors import RateLimited

WINDOW_S = 300.0
PAIR_FAILURES = 5
ADDRESS_FAILURES = 20
ACCOUNT_FREE = 5
ACCOUNT_BASE_DELAY_S = 0.25
ACCOUNT_MAX_DELAY_S = 4.0
KNOWN_TTL_S = 30 * 86_400.0


@dataclass(frozen=True, slots=True)
class Reservation:
    """One attempt counted in advance; `delay_s` is how long it must wait first."""

    email: str
    address: str
    delay_s: float


def _pair(email: str, address: str) -> str:
    return f"{email}\n{address}"  # a newline is in neither an e-mail nor an address


class SignInThrottle:
    """The counters of failed sign-ins (in memory or shared by workers), on `wall` time."""

    def __init__(self, wall: Clock, counters: Counters | None = None) -> None:
        self._wall = wall
        self._counters = counters or MemoryCounters()

    async def reserve(self, email: str, address: str) -> Reservation:
        """Count an attempt now (RateLimited if its address is at a limit).

        Each limit is one atomic add; with MemoryCounters nothing here suspends, so the
        whole reservation happens before the caller's first await.
        """
        now = self._wall.now()
        ends = now + WINDOW_S
        counters = self._counters
        by_address = await counters.add(ADDRESS, address, now, ends, limit=ADDRESS_FAILURES)
        if not by_address.admitted:
            raise _refused(by_address, now)
        by_pair = await counters.add(PAIR, _pair(email, address), now, ends, limit=PAIR_FAILURES)
        if not by_pair.admitted:
            await counters.take(ADDRESS, address)
            raise _refused(by_pair, now)
        failures = (await counters.add(ACCOUNT, email, now, ends)).count - 1
        delay = 0.0
        if failures >= ACCOUNT_FREE and not await self._is_known(email, address, now):
            delay = min(ACCOUNT_BASE_DELAY_S * 2 ** (failures - ACCOUNT_FREE), ACCOUNT_MAX_DELAY_S)
        return Reservation(email, address, delay)

    async def succeeded(self, r: Reservation) -> None:
        """A good password: give the reservation back and remember the address."""
        await self._counters.take(ADDRESS, r.address)
        await self._counters.clear(PAIR, _pair(r.email, r.address))
        await self._counters.take(ACCOUNT, r.email)
        await self._counters.mark(KNOWN, _pair(r.email, r.address), self._wall.now() + KNOWN_TTL_S)

    async def withdraw(self, r: Reservation) -> None:
        """The attempt was never tried (the server was too busy to check it): uncount it."""
        await self._counters.take(ADDRESS, r.address)
        await self._counters.take(PAIR, _pair(r.email, r.address))
        await self._counters.take(ACCOUNT, r.email)

    async def _is_known(self, email: str, address: str, now: float) -> bool:
        return (await self._counters.peek(KNOWN, _pair(email, address), now)).count > 0

    async def sweep(self) -> None:
        await self._counters.sweep(WALL_SCOPES, self._wall.now())


def _refused(tally: Tally, now: float) -> RateLimited:
    return RateLimited("too many attempts; try again later", retry_after=max(tally.ends - now, 0.0))
