"""Meters and protections: energy is the integral of power, over-power trips on time."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchgear.core.model import Action, Configure, SettingsPatch, StatusKind, Switch
from switchgear.devices.twin import Twin
from tests.devices.harness import T0, Bench, make_bench


async def integrate(b: Bench, twin: Twin, seconds: float, step: float) -> tuple[float, float]:
    """(energy counted by the meter, left Riemann sum of reported power) over `seconds`."""
    e0 = twin.snapshot().meters[0].energy_wh
    riemann = 0.0
    for _ in range(int(seconds / step)):
        riemann += twin.snapshot().meters[0].power_w * step / 3600
        await b.advance(step)
    return twin.snapshot().meters[0].energy_wh - e0, riemann


@pytest.mark.parametrize(
    "load",
    [
        {"type": "constant", "watts": 1500.0},
        {"type": "cycling", "watts": 120.0, "on_s": 600.0, "off_s": 1200.0},
        {"type": "thermostat", "rated_watts": 3000.0, "tank_litres": 50.0, "loss_w_per_k": 20.0},
    ],
)
async def test_energy_equals_the_integral_of_power(load: dict[str, Any]) -> None:
    b = make_bench()
    plug = b.add("power-controller-v10") if load["type"] == "thermostat" else b.add()
    plug.set_load(0, load)
    plug.handle(Switch(Action.ON, 0))
    counted, riemann = await integrate(b, plug, 6 * 3600, 10.0)
    assert counted > 0
    assert counted == pytest.approx(riemann, rel=0.01)


async def test_a_year_of_thermostat_cycles_is_cheap_and_consistent() -> None:
    b = make_bench()
    heater = b.add("power-controller-v10")
    heater.set_load(0, {"type": "thermostat", "rated_watts": 4500.0})
    heater.handle(Switch(Action.ON, 0))
    await b.advance(365 * 86_400)
    state = heater.snapshot()
    # standing losses at ~57.5 °C: about 2.5 W/K * 37.5 K ≈ 94 W on average all year
    assert state.meters[0].energy_wh / (365 * 24) == pytest.approx(94, rel=0.1)
    assert 54.9 <= state.extra["water_temperature_c"] <= 60.0 + 1e-6


async def test_periodic_updates_average_power_since_the_last_update() -> None:
    b = make_bench()
    plug = b.add()
    plug.set_load(0, {"type": "constant", "watts": 400.0})
    plug.handle(Switch(Action.ON, 0))
    await b.advance(900)
    update = [e for e in b.events if e.kind is StatusKind.UPDATE and e.reason == "auto"][-1]
    assert update.ts == T0 + 900
    assert update.data["duration"] == 900 and update.data["power"] == pytest.approx(400)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["on", "off", "toggle"]), st.floats(0.5, 5000)), max_size=25
    ),
    st.floats(1, 3000),
)
async def test_energy_never_goes_backwards(steps: list[tuple[str, float]], watts: float) -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(max_power_w=10_000)))
    plug.set_load(0, {"type": "cycling", "watts": watts, "on_s": 300, "off_s": 200})
    last = 0.0
    for action, wait in steps:
        plug.handle(Switch(Action(action), 0))
        await b.advance(wait)
        energy = plug.snapshot().meters[0].energy_wh
        assert energy >= last
        last = energy


async def test_overpower_trips_at_switch_on_when_the_load_is_too_big() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(max_power_w=1000)))
    plug.set_load(0, {"type": "constant", "watts": 1500.0})
    plug.handle(Switch(Action.ON, 0))
    ch = plug.snapshot().channels[0]
    assert ch.on is False and ch.overpower is True
    trigger = [e for e in b.events if e.kind is StatusKind.TRIGGER][-1]
    assert trigger.reason == "overpower" and trigger.data["limit"] == 1000
    assert b.relay_events("overpower")
    plug.set_load(0, {"type": "constant", "watts": 500.0})
    plug.handle(Switch(Action.ON, 0))  # switching on again clears the condition
    assert plug.snapshot().channels[0].overpower is False and plug.channels[0].on is True


async def test_overpower_trips_when_a_cycling_load_crosses_the_limit_later() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(max_power_w=1000)))
    # off for the first 100 s of its cycle, then 2 kW
    plug.set_load(
        0, {"type": "cycling", "watts": 2000.0, "on_s": 50, "off_s": 100, "anchor": T0 - 50}
    )
    plug.handle(Switch(Action.ON, 0))
    assert plug.channels[0].on is True
    await b.advance(99)
    assert plug.channels[0].on is True
    await b.advance(1)
    assert plug.channels[0].on is False and plug.channels[0].overpower is True
    assert b.relay_events("overpower")[-1].ts == T0 + 100


async def test_the_hardware_limit_applies_without_a_setting() -> None:
    b = make_bench()
    plug = b.add()  # SHPLG-1: 3500 W
    plug.set_load(0, {"type": "constant", "watts": 3600.0})
    plug.handle(Switch(Action.ON, 0))
    assert plug.channels[0].overpower is True


async def test_nvram_keeps_energy_across_a_restart_and_the_outage_adds_none() -> None:
    b = make_bench()
    plug = b.add()
    plug.set_load(0, {"type": "constant", "watts": 1000.0})
    plug.handle(Switch(Action.ON, 0))
    await b.advance(3600)
    plug.update("api")  # persists the registers
    energy = plug.snapshot().meters[0].energy_wh
    saved = b.nvram[1]
    b.fleet.remove(1)
    await b.advance(7200)  # server down for two hours
    again = b.add(nvram=saved)  # power-on state off
    assert again.snapshot().meters[0].energy_wh == pytest.approx(energy)
    assert again.channels[0].on is False


async def test_three_phase_meter_relay_cuts_every_phase() -> None:
    b = make_bench()
    meter = b.add("D103")
    for phase, watts in enumerate((500.0, 300.0, 100.0)):
        meter.set_load(phase, {"type": "constant", "watts": watts, "power_factor": 0.9})
    meter.handle(Switch(Action.ON, 0))
    state = meter.snapshot()
    assert [round(m.power_w) for m in state.meters] == [500, 300, 100]
    m0 = state.meters[0]
    assert m0.current_a == pytest.approx(500 / (m0.voltage_v * 0.9))
    meter.handle(Switch(Action.OFF, 0))
    assert all(m.power_w == 0 for m in meter.snapshot().meters)


async def test_pv_feed_counts_reverse_energy() -> None:
    b = make_bench()
    meter = b.add("OMNIMETER-V4")  # line 3 is not behind either relay
    meter.set_load(2, {"type": "generation", "watts": 2000.0})
    await b.advance(1800)
    m = meter.snapshot().meters[2]
    assert m.reverse_power_w == 2000 and m.power_w == 0
    assert m.reverse_energy_wh == pytest.approx(1000) and m.energy_wh == 0


def negative_zeros(twin: Twin) -> list[tuple[int, str]]:
    """(metering point, field) of every reading that is -0.0 (it would show as "-0.0")."""
    return [
        (m.index, f.name)
        for m in twin.snapshot().meters
        for f in dataclasses.fields(m)
        if getattr(m, f.name) == 0 and math.copysign(1.0, getattr(m, f.name)) < 0
    ]


@pytest.mark.parametrize(
    ("model", "load"),
    [
        ("SHPLG-1", None),  # relay off, nothing plugged in
        ("SHPLG-1", {"type": "constant", "watts": 500.0}),  # relay off, a load behind it
        ("SHPLG-1", {"type": "constant", "watts": -0.0}),
        ("D103", {"type": "constant", "watts": 300.0}),
        ("OMNIMETER-V4", {"type": "generation", "watts": 0.0}),  # line 3: always connected
    ],
)
async def test_no_reading_is_a_negative_zero(model: str, load: dict[str, Any] | None) -> None:
    b = make_bench()
    twin = b.add(model)
    if load is not None:
        twin.set_load(len(twin.snapshot().meters) - 1, load)
    await b.advance(60)
    assert negative_zeros(twin) == []
