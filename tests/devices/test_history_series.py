"""What an `update` status carries for the dashboard's series: each phase of a 3-phase
meter, and a water heater's water temperature and capacity level."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.core.model import Action, FirmwareCommand, StatusKind, StatusRecord, Switch
from switchgear.dialects.powercontroller.wire import status_body
from tests.devices.harness import T0, make_bench


def updates(events: list[Any]) -> list[Any]:
    return [e for e in events if e.kind is StatusKind.UPDATE and e.data]


async def test_a_three_phase_meter_reports_each_phase_averaged_over_the_period() -> None:
    b = make_bench()
    meter = b.add("D103")
    for phase, watts in enumerate((500.0, 300.0, 100.0)):
        meter.set_load(phase, {"type": "constant", "watts": watts, "power_factor": 0.9})
    meter.handle(Switch(Action.ON, 0))
    await b.advance(450)
    meter.handle(Switch(Action.OFF, 0))  # half the period at load, half off
    await b.advance(450)
    (u,) = updates(b.events)
    assert [p["power"] for p in u.data["phases"]] == pytest.approx([250, 150, 50], abs=0.01)
    assert sum(p["power"] for p in u.data["phases"]) == pytest.approx(u.data["power"], abs=0.05)
    regs = [m.energy_wh for m in meter.snapshot().meters]
    assert [p["energy_wh"] for p in u.data["phases"]] == pytest.approx(regs, abs=1e-3)


async def test_a_single_phase_meter_and_a_strip_report_no_phases() -> None:
    b = make_bench()
    b.add("D101", device_id=1)
    b.add("LG-MULTI-4", device_id=2)
    await b.advance(900)
    assert updates(b.events) and all("phases" not in u.data for u in updates(b.events))


async def test_a_heaters_update_carries_water_and_capacity_but_its_vendor_face_does_not() -> None:
    b = make_bench()
    pc = b.add("power-controller-v10")
    capacity = {"enable": True, "maxCapacity": 100, "minCapacity": 50, "lossPerLiter": 5.5,
                "lossPerIdleMinute": 1.3, "gainPerWattHour": 2.7}  # fmt: skip
    await b.advance(900)
    assert updates(b.events)[-1].data["capacity_level"] is None  # not tracked yet
    pc.handle(FirmwareCommand("pc.config", {"capacity": capacity}))
    await b.advance(900)
    u = updates(b.events)[-1]
    assert pc.heater is not None
    assert u.data["water_temperature"] == pytest.approx(pc.heater.temp_c, abs=0.01)
    # the level the controller estimates, as its face shows it now
    assert u.data["capacity_level"] == pytest.approx(pc.extra()["capacityLevel"], abs=1e-3)
    assert 50 <= u.data["capacity_level"] <= 100
    record = StatusRecord("s1", pc.device.id, T0 + 900, StatusKind.UPDATE, "auto", u.data)
    info = status_body(record, "abc")["info"]
    assert "water_temperature" not in info and "capacity_level" not in info
    assert info["duration"] == 900  # the vendor's fields stay
