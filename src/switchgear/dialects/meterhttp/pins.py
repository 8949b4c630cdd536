"""Failed meter PINs, counted per client address and per meter, apart from the request slot.

A wrong PIN never spends the meter's one request per interval (that would let a stranger
lock the owner out with one request a minute). Instead:
- an address with `PER_ADDRESS` failed PINs (any meter, unknown devids included) in
  `WINDOW_S` is refused, right PIN or not, until the window passes;
- a meter with `PER_METER` failed PINs from anywhere in `WINDOW_S` (a guess spread over
  many addresses) then answers only addresses that gave its right PIN in the last
  `TRUSTED_S`: its owner's poller keeps working, new addresses wait for the window.

The counts live behind the Counters port: shared by every worker with PostgreSQL. A
window opens at its key's first failure.
"""

from __future__ import annotations

from switchgear.core.clock import Clock
from switchgear.core.counters import PIN_ADDRESS as BY_ADDRESS
from switchgear.core.counters import PIN_METER as BY_METER
from switchgear.core.counters import PIN_TRUSTED as TRUSTED
from switchgear.core.counters import Counters

PER_ADDRESS = 5
PER_METER = 20
WINDOW_S = 600.0
TRUSTED_S = 86_400.0


class PinGuard:
    """Counts failed PINs; `refused` is asked before the PIN is even looked at."""

    def __init__(self, clock: Clock, counters: Counters) -> None:
        self._clock = clock
        self._counters = counters

    async def refused(self, address: str, devid: str) -> bool:
        """Whether this address, or this meter for a stranger, is out of guesses for now."""
        now = self._clock.now()
        if (await self._counters.peek(BY_ADDRESS, address, now)).count >= PER_ADDRESS:
            return True
        if (await self._counters.peek(BY_METER, devid, now)).count >= PER_METER:
            trusted = await self._counters.peek(TRUSTED, _pair(devid, address), now)
            return trusted.count == 0
        return False

    async def failed(self, address: str, devid: str) -> None:
        now = self._clock.now()
        await self._counters.add(BY_ADDRESS, address, now, now + WINDOW_S)
        await self._counters.add(BY_METER, devid, now, now + WINDOW_S)

    async def succeeded(self, address: str, devid: str) -> None:
        await self._counters.mark(TRUSTED, _pair(devid, address), self._clock.now() + TRUSTED_S)


def _pair(devid: str, address: str) -> str:
    return f"{devid}\n{address}"
