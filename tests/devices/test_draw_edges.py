"""A water heater's draw profile: when its draw next changes, and what a phase draws."""

from __future__ import annotations

import pytest

from switchgear.devices.physics import ThermostatLoad

H, DAY = 3600.0, 86_400.0


@pytest.mark.parametrize(
    ("at", "edge"),
    [
        (0.0, 7 * H),  # before the morning draw
        (7 * H, 8 * H),  # at an edge: the next one, not itself
        (7.5 * H, 8 * H),
        (19.99 * H, 20 * H),
        (20 * H, DAY + 7 * H),  # after the last edge: tomorrow's first
        (5 * DAY + 8 * H, 5 * DAY + 18.5 * H),  # any day
        (1e9 + 0.1, None),  # far out: still tomorrow's or today's (checked below)
    ],
)
def test_the_draw_changes_next_at_the_first_edge_after_now(at: float, edge: float | None) -> None:
    load = ThermostatLoad(0.0, 3000.0, draws=[(7, 8, 6.0), (18.5, 20, 4.0)])
    got = load._flow_edge(at)
    assert got is not None and got > at
    if edge is not None:
        assert got == edge
    else:  # the first edge after `at` among today's and tomorrow's
        day = at - at % DAY
        assert got == min(day + o + e for o in (0, DAY) for e in load._edges if day + o + e > at)


def test_a_profile_without_draws_never_changes_by_itself() -> None:
    load = ThermostatLoad(0.0, 3000.0, draws=[])
    assert load._flow_edge(123.0) is None


def test_the_next_change_is_the_thermostat_or_the_draw_whichever_comes_first() -> None:
    load = ThermostatLoad(0.0, 3000.0, draws=[(7, 8, 6.0)], temperature_c=59.9)
    load.advance(6.99 * H)  # the element off or about to be; the draw starts at 7 h
    change = load.next_change()
    assert change is not None and load.t < change <= 7 * H
    load.advance(7.5 * H)  # inside the draw: it ends at 8 h, or the thermostat flips first
    change = load.next_change()
    assert change is not None and load.t < change <= 8 * H
