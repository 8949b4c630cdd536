"""Registering devices on any face: a rate limit per account, one answer for a taken serial.

A serial that is already registered — to the caller or to anyone else — is refused
with the very answer a face gives a malformed serial, so the answer never tells whose it
is. That a well-formed serial cannot be added cannot be hidden (a free one is added), so
the attempts themselves are limited per account.
"""

from __future__ import annotations

from switchgear.auth.ratelimit import SlidingWindow
from switchgear.runtime import Runtime

WINDOW_S = 3600.0


def admit(rt: Runtime, account_id: int) -> None:
    """Count one registration attempt of the account; RateLimited past the hourly limit."""
    limiter = rt.extensions.get("registrations")
    if not isinstance(limiter, SlidingWindow):
        limiter = SlidingWindow(rt.settings.registrations_per_hour, WINDOW_S, rt.clock)
        rt.extensions["registrations"] = limiter
    limiter.check(account_id)
    limiter.hit(account_id)
