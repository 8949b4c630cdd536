"""The power controller's data and pure rules: its heater, household draws, time limits."""

from __future__ import annotations

import math
from typing import Any

from switchgear.core.model import Json
from switchgear.core.pcconfig import Refused, number

# Hot water drawn as a household does: [start hour, end hour (UTC), litres per minute].
HOUSEHOLD_DRAWS: list[Json] = [[6.5, 6.75, 8.0], [7.0, 7.25, 4.0], [18.5, 18.75, 3.0],
                               [21.0, 21.2, 6.0]]  # fmt: skip
# A 190 L, 4.5 kW tank.
DEFAULT_HEATER: dict[str, Json] = {
    "type": "thermostat",
    "rated_watts": 4500.0,
    "tank_litres": 190.0,
    "setpoint_c": 60.0,
    "hysteresis_c": 5.0,
    "draws": HOUSEHOLD_DRAWS,
}
AMBIENT_C = 20.0
SELF_HEATING_C_PER_A = 0.6  # the enclosure sensor warms with the relay current
CAPACITY_STEP_MAX_S = 3600.0  # re-estimate the capacity at least hourly
COMMANDS = ("on", "off", "on_for", "off_for", "on_at", "off_at", "limit_power", "reset")
MAX_AHEAD_S = 366 * 86_400  # the furthest a command's period or time may reach


def fahrenheit(c: float) -> float:
    return c * 9 / 5 + 32


def after_now(now: float, due: float) -> float:
    """`due`, or the clock's next step when it is not after `now` (a check makes progress)."""
    return due if due > now else math.nextafter(now, math.inf)


def command_seconds(value: Any, *, positive: bool = False) -> float:
    """A command's period in seconds, or Refused(-992)."""
    s = number(value)
    if s is None or s < 0 or (positive and s == 0) or s > MAX_AHEAD_S:
        raise Refused(-992)
    return s
