"""The water-heater controller twin on the virtual clock: FFR, timers, limits, capacity."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchgear.core.model import FirmwareCommand, StatusKind
from switchgear.devices.powercontroller import PowerControllerTwin
from switchgear.errors import InvalidInput
from tests.devices.harness import T0, Bench, make_bench

SEED_FFR = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8, "periods": 10,
            "delay": 10}  # fmt: skip
MODEL = "power-controller-v10"


def controller(b: Bench) -> PowerControllerTwin:
    twin = b.add(MODEL)
    assert isinstance(twin, PowerControllerTwin)
    return twin


def command(twin: PowerControllerTwin, **params: Any) -> tuple[bool, tuple[int, ...]]:
    result = twin.handle(FirmwareCommand("pc.command", params))
    return result.ok, result.codes


def configure(twin: PowerControllerTwin, **params: Any) -> tuple[bool, tuple[int, ...]]:
    result = twin.handle(FirmwareCommand("pc.config", params))
    return result.ok, result.codes


def log(b: Bench, since: float = T0) -> list[tuple[float, str, str, dict[str, Any]]]:
    return [
        (e.ts - T0, e.kind.value, e.reason, dict(e.data))
        for e in b.events
        if e.record and e.ts >= since and e.kind is not StatusKind.UPDATE
    ]


async def test_a_controller_boots_on_and_logs_relay_reboot() -> None:
    b = make_bench()
    pc = controller(b)
    assert pc.relay.on is True
    assert log(b)[0][1:3] == ("relay", "reboot")


async def test_seed_ffr_settings_trip_after_ten_cycles_and_return_after_the_delay() -> None:
    b = make_bench()
    pc = controller(b)
    assert configure(pc, ffr=SEED_FFR) == (True, (108,))
    b.events.clear()
    b.fleet.set_grid(1, frequency_hz=59.6)
    await b.advance(9 / 60)  # nine cycles: not yet
    assert pc.relay.on is True
    await b.advance(1 / 60 + 1e-9)
    assert pc.relay.on is False
    await b.advance(20)
    b.fleet.set_grid(1, frequency_hz=59.85)
    await b.advance(9.999)
    assert pc.relay.on is False
    await b.advance(0.002)
    assert pc.relay.on is True
    steps = [(kind, reason) for _, kind, reason, _ in log(b)]
    assert steps == [
        ("trigger", "ffr"), ("relay", "ffr"), ("trigger", "ffrr"), ("relay", "ffrr"),
        ("relay", "auto"),
    ]  # fmt: skip
    entries = log(b)
    assert entries[0][3] == {"frequency": 59.6}
    assert entries[0][0] == pytest.approx(10 / 60)
    assert entries[3][3] == {"on": False, "toggleIn": 10}
    assert entries[4][0] == pytest.approx(entries[2][0] + 10)


async def test_a_grid_step_opens_every_relay_of_a_fleet_before_any_trip_is_logged() -> None:
    b = make_bench()
    fleet = []
    for i in range(5):
        twin = b.add(MODEL, device_id=i + 1)
        assert isinstance(twin, PowerControllerTwin)
        configure(twin, ffr=SEED_FFR)
        fleet.append(twin)
    b.fleet.set_grid(1, frequency_hz=59.6)
    b.scheduler.start()  # as a server runs it: reports go in the `soon` lane
    try:
        b.events.clear()
        await b.advance(10 / 60 + 1e-9)
    finally:
        await b.scheduler.stop()
    assert all(not pc.relay.on for pc in fleet)
    trips = [(e.device_id, e.kind.value, e.ts - T0) for e in b.events if e.reason == "ffr"]
    # each controller logs trigger then relay, stamped with the instant its relay opened:
    # the grid step reached all of them at once, so that instant is the same for all
    assert [t[:2] for t in trips] == [(i, k) for i in range(1, 6) for k in ("trigger", "relay")]
    assert len({t[2] for t in trips}) == 1
    assert trips[0][2] == pytest.approx(10 / 60, abs=1e-6)


def grid_reports(b: Bench) -> list[tuple[float, bool, float]]:
    """The `update/grid` reports: when, the relay in their state, its meter's power."""
    return [
        (e.ts - T0, e.state.channels[0].on, e.state.meters[0].power_w)
        for e in b.events
        if e.kind is StatusKind.UPDATE and e.reason == "grid"
    ]


async def test_a_step_that_trips_reports_its_grid_update_just_before_the_trip() -> None:
    """One report a trip: the step's `update/grid` (its instant, the relay still on) goes
    out with the trip's events, not as a message of its own 10 cycles earlier."""
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR)
    b.scheduler.start()
    try:
        b.events.clear()
        b.fleet.set_grid(1, frequency_hz=59.6)
        await b.advance(0)  # the step's reports run (the `soon` lane)
        await b.advance(9 / 60)
        assert grid_reports(b) == []  # held for the trip
        await b.advance(1 / 60 + 1e-9)
    finally:
        await b.scheduler.stop()
    seq = [(e.kind.value, e.reason, e.record) for e in b.events]
    at = seq.index(("update", "grid", False))
    assert seq[at : at + 3] == [("update", "grid", False), ("trigger", "ffr", True),
                                ("relay", "ffr", True)]  # fmt: skip
    ((ts, on, power),) = grid_reports(b)
    assert ts == pytest.approx(0.0) and on is True and power > 0  # the state at the step
    trip = b.events[at + 2]
    assert trip.state.channels[0].on is False and trip.ts - T0 == pytest.approx(10 / 60)


async def test_a_step_that_comes_back_before_the_trip_still_reports_its_grid_update() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR)
    b.scheduler.start()
    try:
        b.events.clear()
        b.fleet.set_grid(1, frequency_hz=59.6)
        await b.advance(0)
        await b.advance(5 / 60)
        assert grid_reports(b) == []
        b.fleet.set_grid(1, frequency_hz=59.75)  # above trip: no trip comes
        await b.advance(0)
    finally:
        await b.scheduler.stop()
    reports = grid_reports(b)
    assert [round(t, 4) for t, _, _ in reports] == [0.0, round(5 / 60, 4)]
    assert all(on for _, on, _ in reports) and pc.relay.on is True


async def test_a_step_without_ffr_reports_its_grid_update_at_once() -> None:
    b = make_bench()
    controller(b)
    b.scheduler.start()
    try:
        b.events.clear()
        b.fleet.set_grid(1, frequency_hz=59.6)
        await b.advance(0)
    finally:
        await b.scheduler.stop()
    assert [(round(t, 4), on) for t, on, _ in grid_reports(b)] == [(0.0, True)]


def test_a_grid_step_reaches_a_running_fleet_at_one_instant() -> None:
    """On a clock that runs (a server's), the step's reports of every controller carry one
    instant and agree with it: the fleet handles the step as the grid does, all at once."""
    b = make_bench(speed=1.0)
    for i in range(1, 201):
        b.add("power-controller-v10", device_id=i)
    b.events.clear()
    b.fleet.set_grid(1, frequency_hz=59.6)  # (no scheduler running: reported at once)
    grid = [e for e in b.events if e.kind is StatusKind.UPDATE and e.reason == "grid"]
    assert len(grid) == 200
    assert len({e.ts for e in grid}) == len({e.state.ts for e in grid}) == 1
    assert {e.state.meters[0].frequency_hz for e in grid} == {59.6}


async def test_a_busy_fleets_trip_reports_carry_the_state_at_the_step() -> None:
    """A running fleet logs a step's trips while it still works through the step: each
    trip's `update/grid` is the state at the step (relay on, the step's instant), not one
    taken after the relay opened (a fleet of thousands took it up to 580 ms late)."""
    b = make_bench(speed=1.0)
    n = 400
    for i in range(1, n + 1):
        twin = b.add(MODEL, device_id=i)
        twin.handle(FirmwareCommand("pc.config", {"ffr": {**SEED_FFR, "periods": 1}}))
    b.scheduler.start()
    try:
        await asyncio.sleep(0.05)
        b.events.clear()
        step = b.clock.now()
        b.fleet.set_grid(1, frequency_hz=59.6)  # trips due one cycle (16.7 ms) after it
        for _ in range(400):
            if len(b.relay_events("ffr")) == n:
                break
            await asyncio.sleep(0.01)
    finally:
        await b.scheduler.stop()
    assert len(b.relay_events("ffr")) == n
    held = [e for e in b.events if e.kind is StatusKind.UPDATE and e.reason == "grid"]
    assert len(held) == n and all(e.state.channels[0].on for e in held)
    assert {e.ts for e in held} == {held[0].ts} and held[0].ts - step < 0.05
    assert all(e.state.ts == e.ts for e in held)


async def test_a_dip_shorter_than_the_periods_does_not_trip() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR)
    b.fleet.set_grid(1, frequency_hz=59.6)
    await b.advance(5 / 60)
    b.fleet.set_grid(1, frequency_hz=59.75)  # above trip, below return
    await b.advance(60)
    assert pc.relay.on is True
    assert not [e for e in b.events if e.kind is StatusKind.TRIGGER]


async def test_ffr_leaves_the_load_off_when_the_user_switched_it_off_during_the_event() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR)
    b.fleet.set_grid(1, frequency_hz=59.5)
    await b.advance(1)
    command(pc, name="off")
    b.fleet.set_grid(1, frequency_hz=60.0)
    await b.advance(60)
    assert pc.relay.on is False


async def test_ffr_config_codes_and_limits() -> None:
    pc = controller(make_bench())
    assert configure(pc, ffr={**SEED_FFR, "periods": 0}) == (False, (-996,))
    assert configure(pc, ffr={**SEED_FFR, "periods": 31}) == (False, (-995,))
    assert configure(pc, ffr={**SEED_FFR, "delay": -1}) == (False, (-994,))
    assert pc.config["ffr"]["enabled"] is False  # refused: nothing changed
    assert configure(pc, ffr=SEED_FFR) == (True, (108,))
    assert configure(pc, ffr=SEED_FFR) == (True, (1001,))
    assert configure(pc, ffr={"enable": False}) == (True, (109,))
    with pytest.raises(InvalidInput):
        configure(pc, ffr={"enable": True, "tripThreshold": 59.9, "returnThreshold": 59.8})


async def test_on_for_turns_off_after_the_period_and_off_for_accepts_delay() -> None:
    b = make_bench()
    pc = controller(b)
    assert command(pc, name="off_for", delay=900) == (True, (105,))
    await b.advance(899)
    assert pc.relay.on is False
    await b.advance(1)
    assert pc.relay.on is True
    assert command(pc, name="on_for", time=60) == (True, (104,))
    await b.advance(60)
    assert pc.relay.on is False
    relays = [(t, reason, d) for t, kind, reason, d in log(b) if kind == "relay"][1:]
    assert relays == [
        (0, "api", {"on": False, "toggleIn": 900}),
        (900, "auto", {"on": True, "toggleIn": 0}),
        (900, "api", {"on": True, "toggleIn": 60}),
        (960, "auto", {"on": False, "toggleIn": 0}),
    ]


async def test_delayed_off_and_on_at_fire_at_their_times() -> None:
    b = make_bench()
    pc = controller(b)
    assert command(pc, name="off", delay=60) == (True, (107,))
    await b.advance(59)
    assert pc.relay.on is True
    await b.advance(1)
    assert pc.relay.on is False
    assert command(pc, name="on_at", time=T0 + 3600) == (True, (106,))
    assert command(pc, name="off_at", time=T0 - 1) == (False, (-992,))
    await b.advance(3600 - 60 - 0.5)
    assert pc.relay.on is False
    await b.advance(0.5)
    assert pc.relay.on is True
    assert [e.ts - T0 for e in b.relay_events("timer")] == [60, 3600]


async def test_bad_commands_get_negative_codes_and_change_nothing() -> None:
    b = make_bench()
    pc = controller(b)
    assert command(pc, name="dance") == (False, (-992,))
    assert command(pc, name="on_for", time=-5) == (False, (-992,))
    assert command(pc, name="limit_power", power=-1, time=60) == (False, (-986,))
    assert pc.relay.on is True and pc.limit is None
    answers = [e.data for e in b.events if e.kind is StatusKind.FUNCTION]
    assert [a["responseCodes"] for a in answers] == [[-992], [-992], [-986]]


async def test_limit_power_opens_the_relay_at_the_cap_and_ends_after_the_period() -> None:
    b = make_bench()
    pc = controller(b)
    b.fleet.apply(1, _load({"type": "constant", "watts": 3600.0}))
    assert command(pc, name="limit_power", power=50, time=3600) == (True, (115,))
    await b.advance(49)
    assert pc.relay.on is True
    await b.advance(1)  # 3600 W for 50 s = 50 Wh
    assert pc.relay.on is False
    assert b.relay_events("power_limit")[0].ts == pytest.approx(T0 + 50)
    await b.advance(3600 - 50)
    assert pc.relay.on is True and pc.limit is None


async def test_limit_power_not_reached_leaves_the_load_on() -> None:
    b = make_bench()
    pc = controller(b)
    b.fleet.apply(1, _load({"type": "constant", "watts": 10.0}))
    command(pc, name="limit_power", power=50, time=3600)
    await b.advance(7200)
    assert pc.relay.on is True
    assert b.relay_events("power_limit") == []


async def test_capacity_stops_heating_at_max_and_restarts_below_min_even_during_ffr() -> None:
    b = make_bench()
    pc = controller(b)  # its default heater: a 4.5 kW element, heating
    capacity = {"enable": True, "maxCapacity": 100, "minCapacity": 50, "lossPerLiter": 5.5,
                "lossPerIdleMinute": 1.3, "gainPerWattHour": 2.7}  # fmt: skip
    assert configure(pc, capacity=capacity) == (True, (114,))
    # starts midway (75): 25 more units at 2.7 per Wh = 9.26 Wh = 7.41 s at 4500 W
    await b.advance(7.4)
    assert pc.relay.on is True
    await b.advance(0.02)
    assert pc.relay.on is False
    off_at = b.relay_events("max_capacity")[0].ts
    configure(pc, ffr=SEED_FFR)
    b.fleet.set_grid(1, frequency_hz=59.5)  # a curtailment in progress
    await b.advance(5)
    # idle loss 1.3/min: from 100 to 50 takes 38.46 min
    await b.advance(50 / 1.3 * 60 - 6)
    assert pc.relay.on is False
    await b.advance(2)
    assert pc.relay.on is True
    back = b.relay_events("min_capacity")[0]
    assert back.ts - off_at == pytest.approx(50 / 1.3 * 60, abs=0.01)


async def test_sample_period_sets_the_auto_update_cadence() -> None:
    b = make_bench()
    pc = controller(b)
    assert configure(pc, samplePeriod=300) == (True, (120,))
    assert configure(pc, samplePeriod=300) == (True, (1002,))
    assert configure(pc, samplePeriod=5) == (False, (-985,))
    await b.advance(900)
    autos = [e for e in b.events if e.kind is StatusKind.UPDATE and e.reason == "auto"]
    assert [round(e.ts - T0) for e in autos] == [300, 600, 900]
    assert autos[0].data["duration"] == 300 and autos[0].data["flow"] is None


async def test_schedule_runs_entries_and_repeats() -> None:
    b = make_bench()
    pc = controller(b)
    entries = [{"name": "off", "when": T0 + 100, "repeat": 3600},
               {"name": "on", "when": T0 + 200, "repeat": 0}]  # fmt: skip
    assert configure(pc, schedule=entries) == (True, (117, 117))
    await b.advance(100)
    assert pc.relay.on is False
    await b.advance(100)
    assert pc.relay.on is True
    await b.advance(3600)
    assert pc.relay.on is False
    assert configure(pc, schedule=[{"name": "on"}] * 40) == (False, (-985,))
    assert configure(pc, schedule=[]) == (True, (119,))


async def test_flowmeter_codes() -> None:
    pc = controller(make_bench())
    assert configure(pc, flowmeter={"type": "none"}) == (True, (110,))
    assert configure(pc, flowmeter={"type": "euf4315k"}) == (True, (111,))
    tuf = {"type": "tuf2000m", "pipeOuterDiameter": 22.225, "pipeWallThickness": 0.8128,
           "pipeType": "copper"}  # fmt: skip
    assert configure(pc, flowmeter=tuf) == (True, (112,))
    assert configure(pc, flowmeter={"type": "magic"}) == (False, (-999,))
    bad = {**tuf, "pipeType": "cardboard", "pipeOuterDiameter": -1}
    assert configure(pc, flowmeter=bad) == (False, (-991, -990, -989))


async def test_hot_water_draws_cool_the_tank_and_show_as_flow() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, flowmeter={"type": "euf4315k"})
    tomorrow = T0 - T0 % 86_400 + 86_400
    await b.advance(tomorrow + 6.5 * 3600 - T0)
    pc.update("api")
    heater = pc.heater
    assert heater is not None
    before, drawn = heater.temp_c, heater.litres
    await b.advance(15 * 60)  # the morning shower: 8 L/min for 15 minutes
    pc.update("api")
    last = [e for e in b.events if e.kind is StatusKind.UPDATE][-1]
    assert last.data["flow"] == pytest.approx(8.0)
    assert heater.litres - drawn == pytest.approx(120.0)
    assert heater.calling and heater.temp_c < before


async def test_config_limit_and_ffr_state_survive_a_power_cycle() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR, samplePeriod=600)
    b.fleet.apply(1, _load({"type": "constant", "watts": 100.0}))
    command(pc, name="limit_power", power=1000, time=3600)
    b.fleet.set_grid(1, frequency_hz=59.5)
    await b.advance(1)
    pc.power_cycle()
    assert pc.config["samplePeriod"] == 600 and pc.limit is not None
    b.fleet.set_grid(1, frequency_hz=59.9)
    await b.advance(3600)
    assert pc.limit is None
    assert [e.reason for e in b.events if e.kind is StatusKind.TRIGGER] == ["ffr", "ffrr"]


def _load(load: dict[str, Any]) -> Any:
    from switchgear.core.ports import SimAction

    return SimAction("load", channel=0, load=load)


async def test_a_trip_run_late_by_a_busy_process_is_stamped_with_its_due_instant() -> None:
    b = make_bench()
    fleet = []
    for i in range(3):
        twin = b.add(MODEL, device_id=i + 1)
        assert isinstance(twin, PowerControllerTwin)
        configure(twin, ffr=SEED_FFR)
        fleet.append(twin)
    b.fleet.set_grid(1, frequency_hz=59.6)
    b.scheduler.start()
    try:
        b.events.clear()
        b.clock.set(T0 + 0.5)  # the process came to its timers a third of a second late
        await b.advance(1e-9)
    finally:
        await b.scheduler.stop()
    assert all(not pc.relay.on for pc in fleet)
    stamps = [e.ts - T0 for e in b.events if e.reason == "ffr"]
    assert len(stamps) == 6  # trigger and relay, each controller
    assert stamps == pytest.approx([10 / 60] * 6, abs=1e-6)  # the step plus ten cycles


async def test_a_grid_step_heard_late_trips_at_the_step_plus_its_cycles() -> None:
    b = make_bench()
    pc = controller(b)
    configure(pc, ffr=SEED_FFR)
    b.clock.set(T0 + 0.1)  # the step was at T0; this process hears of it 100 ms later
    b.fleet.set_grid(1, frequency_hz=59.6, at=T0)
    b.scheduler.start()
    try:
        b.events.clear()
        await b.advance(10 / 60)
    finally:
        await b.scheduler.stop()
    assert not pc.relay.on
    stamps = [e.ts - T0 for e in b.events if e.reason == "ffr"]
    assert stamps == pytest.approx([10 / 60] * 2, abs=1e-6)  # trigger and relay


async def test_a_step_heard_after_its_trip_was_due_still_reports_once_with_the_trip() -> None:
    """A fleet process that hears the step late runs the overdue trips before the step's
    reports: each controller's report still goes with its trip's events (one message: its
    events one after another), not alone among the other controllers' reports."""
    b = make_bench()
    fleet = [b.add(MODEL, device_id=i) for i in (1, 2, 3)]
    for twin in fleet:
        assert isinstance(twin, PowerControllerTwin)
        configure(twin, ffr=SEED_FFR)
    b.clock.set(T0 + 0.5)  # the step was at T0; its trips were due at T0 + 10 cycles
    b.scheduler.start()
    try:
        b.events.clear()
        b.fleet.set_grid(1, frequency_hz=59.6, at=T0)
        await b.advance(0)
    finally:
        await b.scheduler.stop()
    seq = [(e.device_id, e.kind.value, e.reason) for e in b.events]
    one = (("update", "grid"), ("trigger", "ffr"), ("relay", "ffr"))
    assert seq == [(i, k, r) for i in (1, 2, 3) for k, r in one]
