"""A twin's power over an FFR window, exact: its load replayed from the crossing.

A twin's load is deterministic physics (devices/physics.py): from its state at the
crossing and the instants its relay opened and closed, its power is known at every
instant, including a thermostat switching the element on or off by itself. The event
keeps the load's state at the crossing (only for loads that change by themselves: a
constant load needs none) and replays it when the report or the evidence is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from switchgear.core.model import Json
from switchgear.devices.physics import Load, ThermostatLoad, load_from_json

NUDGE_S = 1e-6  # a thermostat flips just after its edge is due (above a float's step at
# today's epoch seconds, about 2.4e-7)
MAX_STEPS = 100_000  # a window's changes, at most (a bound, not a figure ever reached)


def snapshot(load: Load) -> Json | None:
    """The load's state to replay from, or None when its power never changes by itself."""
    if load.next_change() is None:
        return None
    return load.to_json()


def replay(
    state: Json,
    start: float,
    supply: Sequence[tuple[float, bool]],
    end: float,
    voltage: Sequence[tuple[float, float]] = (),
) -> list[tuple[float, float]]:
    """(instant, W) at each change of the load's power in (start, end], given the relay's
    changes `supply` ((instant, closed)) and the supply voltage's steps `voltage`
    ((instant, V): a grid step) after `start`."""
    assert isinstance(state, dict)
    load = load_from_json(state, start)
    last = load.power(start)
    out: list[tuple[float, float]] = []
    pending: list[tuple[float, bool | float]] = sorted([*supply, *voltage])
    k = 0
    t = start
    for _ in range(MAX_STEPS):
        if t >= end:
            break
        change = load.next_change()
        due = math.inf if change is None else max(change, t)
        switch = pending[k][0] if k < len(pending) else math.inf
        at = min(due, switch)
        if at > end:
            break
        if switch <= due:
            what = pending[k][1]
            k += 1
            if isinstance(what, bool):
                load.set_supplied(switch, what)
            elif isinstance(load, ThermostatLoad):
                load.set_voltage(switch, what)
            watts = load.power(switch)
        else:
            load.advance(at + NUDGE_S)
            watts = load.power(at + NUDGE_S)
        if watts != last:
            if out and out[-1][0] == at:  # two changes at one instant: the power after both
                out.pop()
            out.append((at, watts))
            last = watts
        t = at
    return out
