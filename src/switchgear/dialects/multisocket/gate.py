"""The API gateway in front of the multisocket API: subscription keys and the daily quota."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_MULTISOCKET_KEY
from switchgear.core.accounts import Credential
from switchgear.core.clock import Clock
from switchgear.core.counters import MULTISOCKET_QUOTA, Counters
from switchgear.dialects.multisocket.errors import InvalidKey, MissingKey, QuotaExceeded
from switchgear.errors import AuthError
from switchgear.runtime import Runtime

DAY = 86_400.0
MISSING = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
INVALID = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)


class Quota:
    """Calls per user (account) per UTC day, whichever of its keys they come with;
    None = unlimited (the default). Counted in `counters` (shared by workers)."""

    def __init__(self, clock: Clock, per_day: int | None, counters: Counters) -> None:
        self._clock = clock
        self.per_day = per_day
        self._counters = counters

    async def spend(self, account_id: int) -> None:
        if self.per_day is None:
            return
        now = self._clock.now()
        day = int(now // DAY)
        ends = (day + 1) * DAY
        # the day in the key too: a clock moved back a day does not reuse a later count
        key = f"{account_id}:{day}"
        tally = await self._counters.add(MULTISOCKET_QUOTA, key, now, ends, limit=self.per_day)
        if not tally.admitted:
            left = int(ends - now)
            hms = f"{left // 3600:02d}:{left % 3600 // 60:02d}:{left % 60:02d}"
            raise QuotaExceeded(f"Out of call volume quota. Quota will be replenished in {hms}.")


def subscription(rt: Runtime, key: str | None) -> Credential:
    """The subscription behind an `Ocp-Apim-Subscription-Key` header."""
    if not key:
        raise MissingKey(MISSING)
    try:
        return rt.auth.authenticate(key, KIND_MULTISOCKET_KEY)
    except AuthError:
        raise InvalidKey(INVALID) from None
