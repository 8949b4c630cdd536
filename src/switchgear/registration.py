"""Registering devices on any face: a rate limit per account, one answer for a taken serial.

A serial that is already registered — to the caller or to anyone else — is refused
with the very answer a face gives a malformed serial, so the answer never tells whose it
is. That a well-formed serial cannot be added cannot be hidden (a free one is added), so
the attempts themselves are limited per account.
"""

from __future__ import annotations

from switchgear.core.counters import REGISTRATIONS
from switchgear.errors import RateLimited
from switchgear.runtime import Runtime

WINDOW_S = 3600.0
SCOPE = REGISTRATIONS


async def admit(rt: Runtime, account_id: int) -> None:
    """Count one registration attempt of the account; RateLimited past the hourly limit."""
    now = rt.clock.now()
    limit = rt.settings.registrations_per_hour
    tally = await rt.counters.add(SCOPE, str(account_id), now, now + WINDOW_S, limit=limit)
    if not tally.admitted:
        raise RateLimited(
            "too many attempts; try again later", retry_after=max(tally.ends - now, 0.0)
        )


async def admit_rows(rt: Runtime, account_id: int, rows: int) -> None:
    """Count a bulk import's rows that are not yet the account's devices (added or
    refused alike) as that many attempts, all or none.

    The operator onboards fleets and is not counted (it may already affect every tenant);
    a tenant's import that would pass its hourly allowance is refused whole before any row
    is added, so a file of serials probes no more than single registrations would.
    """
    account = rt.auth.account(account_id)
    if rows <= 0 or (account is not None and account.operator):
        return
    now = rt.clock.now()
    limit = rt.settings.registrations_per_hour
    tally = await rt.counters.add(SCOPE, str(account_id), now, now + WINDOW_S, rows, limit)
    if not tally.admitted:
        left = limit - tally.count
        raise RateLimited(
            f"the import holds {rows} rows that are not yet devices of this account;"
            f" it may register {left} more this hour (at most {limit})",
            retry_after=WINDOW_S,
        )
