"""Sign-in throttling on wall time: refuse per client address, slow down per account.

Every attempt is counted before the first await (a reservation), so a burst of
concurrent attempts meets the limit one by one instead of all passing the check at
once; a good password gives its reservation back. The windows read a wall clock,
never the virtual clock a demo or a test moves.

- per client address, across every e-mail: ADDRESS_FAILURES per window, then 429;
- per (e-mail, address): PAIR_FAILURES per window, then 429;
- per account from anywhere: never refused (a lockout anyone could trigger would be a
  weapon); after ACCOUNT_FREE failures each attempt waits a delay that doubles up to
  ACCOUNT_MAX_DELAY_S, except from an address that signed in to it before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from switchgear.auth.ratelimit import SlidingWindow
from switchgear.core.clock import Clock

WINDOW_S = 300.0
PAIR_FAILURES = 5
ADDRESS_FAILURES = 20
ACCOUNT_FREE = 5
ACCOUNT_BASE_DELAY_S = 0.25
ACCOUNT_MAX_DELAY_S = 4.0
KNOWN_TTL_S = 30 * 86_400.0
KNOWN_PER_ACCOUNT = 16


@dataclass(frozen=True, slots=True)
class Reservation:
    """One attempt counted in advance; `delay_s` is how long it must wait first."""

    email: str
    address: str
    at: tuple[float, float, float]
    delay_s: float


class SignInThrottle:
    """The counters of failed sign-ins, in memory, on `wall` time."""

    def __init__(self, wall: Clock) -> None:
        self._wall = wall
        self._pair = SlidingWindow(PAIR_FAILURES, WINDOW_S, wall)
        self._address = SlidingWindow(ADDRESS_FAILURES, WINDOW_S, wall)
        self._account = SlidingWindow(1 << 30, WINDOW_S, wall)  # counts, never refuses
        self._known: dict[str, OrderedDict[str, float]] = {}

    def reserve(self, email: str, address: str) -> Reservation:
        """Count an attempt now (RateLimited if its address is at a limit)."""
        self._address.check(address)
        self._pair.check((email, address))
        failures = self._account.count(email)
        at = (
            self._address.hit(address),
            self._pair.hit((email, address)),
            self._account.hit(email),
        )
        delay = 0.0
        if failures >= ACCOUNT_FREE and not self._is_known(email, address):
            delay = min(ACCOUNT_BASE_DELAY_S * 2 ** (failures - ACCOUNT_FREE), ACCOUNT_MAX_DELAY_S)
        return Reservation(email, address, at, delay)

    def succeeded(self, r: Reservation) -> None:
        """A good password: give the reservation back and remember the address."""
        self._address.release(r.address, r.at[0])
        self._pair.reset((r.email, r.address))
        self._account.release(r.email, r.at[2])
        known = self._known.setdefault(r.email, OrderedDict())
        known[r.address] = self._wall.now()
        known.move_to_end(r.address)
        while len(known) > KNOWN_PER_ACCOUNT:
            known.popitem(last=False)

    def withdraw(self, r: Reservation) -> None:
        """The attempt was never tried (the server was too busy to check it): uncount it."""
        self._address.release(r.address, r.at[0])
        self._pair.release((r.email, r.address), r.at[1])
        self._account.release(r.email, r.at[2])

    def _is_known(self, email: str, address: str) -> bool:
        known = self._known.get(email)
        seen = None if known is None else known.get(address)
        return seen is not None and self._wall.now() - seen < KNOWN_TTL_S

    def sweep(self) -> None:
        for window in (self._pair, self._address, self._account):
            window.sweep()
