"""Which devices can serve an FFR programme, and the FFR settings that make them meet it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from switchgear.core.catalog import model as catalog_model
from switchgear.core.ffr import Programme
from switchgear.core.model import Device, Json

LOCK_TAG = "locked:ffr"  # a tenant's tag: switchgear must not change this device's FFR settings
DEFAULT_PERIODS = 10  # the firmware's default: fewer cycles only when a programme needs them


@dataclass(frozen=True, slots=True)
class FfrFirmware:
    """A device model's frequency trip: cycles it may count, and its relay's opening time."""

    periods: tuple[int, int]
    relay_open_s: float
    return_margin_hz: float  # the return threshold must stay this far below nominal


# Models whose firmware trips on frequency (the power controller's `info.ffr`). A twin's
# relay opens at the instant its trip fires.
FIRMWARE: dict[str, FfrFirmware] = {
    "power-controller-v10": FfrFirmware(periods=(1, 30), relay_open_s=0.0, return_margin_hz=0.02),
}


def plan(device: Device, p: Programme, taken_by: int | None) -> dict[str, Json] | str:
    """The `ffr` settings for this device under this programme, or why it cannot serve."""
    fw = FIRMWARE.get(device.model)
    if fw is None:
        return f"no FFR firmware (model {device.model})"
    if taken_by is not None:
        return f"already in FFR group {taken_by}"
    if LOCK_TAG in device.tags:
        return f"FFR settings locked by the tenant (tag {LOCK_TAG})"
    nominal = catalog_model(device.model).nominal_frequency_hz
    if nominal != p.nominal_hz:
        return f"on a {nominal:g} Hz grid; the programme is for {p.nominal_hz:g} Hz"
    fit = math.floor((p.full_activation_s - fw.relay_open_s) * nominal + 1e-9)
    if fit < fw.periods[0]:
        return (
            f"cannot open within {p.full_activation_s:g} s "
            f"({fw.periods[0]} grid cycle + {fw.relay_open_s:g} s relay)"
        )
    periods = min(DEFAULT_PERIODS, fit, fw.periods[1])
    back = round(min(p.threshold_hz + 0.1, nominal - fw.return_margin_hz), 3)
    return {
        "enable": True,
        "tripThreshold": p.threshold_hz,
        "returnThreshold": back,
        "periods": periods,
        "delay": p.min_support_s,
        "maxBackOff": 0,
    }
