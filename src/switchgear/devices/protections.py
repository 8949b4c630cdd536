"""Protections that open a relay on their own: the over-power cut-off."""

from __future__ import annotations

from dataclasses import dataclass

from switchgear.core.model import fast_init
from switchgear.devices.relay import RelayChannel


@fast_init
@dataclass(frozen=True, slots=True)
class Verdict:
    trip: bool
    power_w: float
    limit_w: float | None
    recheck_at: float | None  # when the load may next cross the limit


def overpower_limit(channel: RelayChannel, hardware_w: float | None) -> float | None:
    """The lower of the user's limit and the hardware's, if either is set."""
    limits = [w for w in (channel.settings.max_power_w, hardware_w) if w is not None]
    return min(limits) if limits else None


def judge_overpower(
    channel: RelayChannel,
    hardware_w: float | None,
    power_w: float,
    peak_w: float,
    next_change: float | None,
) -> Verdict:
    """Trip if the channel draws more than its limit; else say when to look again."""
    limit = overpower_limit(channel, hardware_w)
    if not channel.on or limit is None:
        return Verdict(False, power_w, limit, None)
    if power_w > limit:
        return Verdict(True, power_w, limit, None)
    recheck = next_change if peak_w > limit else None
    return Verdict(False, power_w, limit, recheck)
