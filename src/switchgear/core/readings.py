"""Readings at the instant of a read: registers integrated on from the last report."""

from __future__ import annotations

import dataclasses

from switchgear.core.model import DeviceState

WH = 3600.0  # watt-seconds per watt-hour


def project(state: DeviceState, now: float) -> DeviceState:
    """The state with each energy register carried on to `now` at the power last reported.

    A meter's registers count between its reports; what the cloud last heard is the best
    estimate of the power since. An offline device, or one that never reported, stays as
    it was: nothing is known about it since.
    """
    dt = now - state.ts
    if not state.online or dt <= 0 or not state.meters or state.ts <= 0:
        return state
    meters = tuple(
        dataclasses.replace(
            m,
            energy_wh=m.energy_wh + m.power_w * dt / WH,
            reverse_energy_wh=m.reverse_energy_wh + m.reverse_power_w * dt / WH,
        )
        for m in state.meters
    )
    return dataclasses.replace(state, meters=meters)


def with_readings(shadow: DeviceState, live: DeviceState) -> DeviceState:
    """The shadow (relays, settings, report time) with readings measured just now."""
    if not shadow.online:
        return shadow
    return dataclasses.replace(shadow, meters=live.meters, temperature_c=live.temperature_c)
