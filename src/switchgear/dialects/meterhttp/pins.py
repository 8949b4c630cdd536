"""Failed meter PINs, counted per client address and per meter, apart from the request slot.

A wrong PIN never spends the meter's one request per interval (that would let a stranger
lock the owner out with one request a minute). Instead:
- an address with `PER_ADDRESS` failed PINs (any meter, unknown devids included) in
  `WINDOW_S` is refused, right PIN or not, until the window passes;
- a meter with `PER_METER` failed PINs from anywhere in `WINDOW_S` (a guess spread over
  many addresses) then answers only addresses that gave its right PIN in the last
  `TRUSTED_S`: its owner's poller keeps working, new addresses wait for the window.

Every attempt is counted before its PIN is checked (a reservation, as for sign-ins),
each limit in one atomic add, so a burst of concurrent guesses, on one worker or spread
over several, meets the limit one by one; the right PIN gives its reservation back. The
counts live behind the Counters port: shared by every worker with PostgreSQL. A window
opens at its key's first attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchgear.core.clock import Clock
from switchgear.core.counters import PIN_ADDRESS as BY_ADDRESS
from switchgear.core.counters import PIN_METER as BY_METER
from switchgear.core.counters import PIN_TRUSTED as TRUSTED
from switchgear.core.counters import Counters

PER_ADDRESS = 5
PER_METER = 20
WINDOW_S = 600.0
TRUSTED_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One PIN attempt counted in advance; `by_meter`: whether the meter's count has it."""

    address: str
    devid: str
    by_meter: bool


class PinGuard:
    """Counts PIN attempts; `reserve` is asked before the PIN is even looked at."""

    def __init__(self, clock: Clock, counters: Counters) -> None:
        self._clock = clock
        self._counters = counters

    async def reserve(self, address: str, devid: str) -> Attempt | None:
        """Count an attempt now; None if this address, or this meter for a stranger, is
        out of guesses for now (then nothing is counted)."""
        now = self._clock.now()
        ends = now + WINDOW_S
        counters = self._counters
        if not (await counters.add(BY_ADDRESS, address, now, ends, limit=PER_ADDRESS)).admitted:
            return None
        if (await counters.add(BY_METER, devid, now, ends, limit=PER_METER)).admitted:
            return Attempt(address, devid, by_meter=True)
        if (await counters.peek(TRUSTED, _pair(devid, address), now)).count > 0:
            return Attempt(address, devid, by_meter=False)
        await counters.take(BY_ADDRESS, address)
        return None

    async def succeeded(self, attempt: Attempt) -> None:
        """The right PIN: give the attempt back and trust its address for a day."""
        await self._counters.take(BY_ADDRESS, attempt.address)
        if attempt.by_meter:
            await self._counters.take(BY_METER, attempt.devid)
        pair = _pair(attempt.devid, attempt.address)
        await self._counters.mark(TRUSTED, pair, self._clock.now() + TRUSTED_S)


def _pair(devid: str, address: str) -> str:
    return f"{devid}\n{address}"
