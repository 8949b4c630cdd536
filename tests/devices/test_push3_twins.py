"""The Omnimeter v4 and its Push3 gateway on the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.core.model import Device, FirmwareCommand, StatusKind
from switchgear.core.ports import SimAction
from switchgear.devices.gateway import GatewayTwin
from switchgear.devices.omnimeter import OmnimeterTwin
from switchgear.errors import InvalidCommand
from tests.api.test_registration_scale import Steps
from tests.devices.harness import T0, Bench, make_bench

ADDRESS = "000350000900"
GATEWAY = "4016A0B1C2D3"


def rig(b: Bench) -> tuple[GatewayTwin, OmnimeterTwin]:
    gw = b.fleet.add(Device(1, 1, GATEWAY, "PUSH3", "gateway", T0))
    meter = b.fleet.add(
        Device(2, 1, ADDRESS, "OMNIMETER-V4", "meter", T0, attrs={"gateway": GATEWAY})
    )
    assert isinstance(gw, GatewayTwin) and isinstance(meter, OmnimeterTwin)
    for line, watts in enumerate((850.0, 430.0, 1200.0)):
        b.fleet.apply(2, SimAction("load", channel=line, load={"type": "constant", "watts": watts}))
    return gw, meter


def run(meter: OmnimeterTwin, command: str, **params: Any) -> Any:
    return meter.handle(FirmwareCommand(f"ekm.{command}", params)).data["data"]


def relay(meter: OmnimeterTwin, name: str, status: str, **more: Any) -> None:
    run(meter, "SetRelay", relay=name, status=status, **more)


async def test_relays_switch_lines_one_and_two_and_state_out_follows() -> None:
    b = make_bench()
    _, meter = rig(b)
    assert [round(m.power_w) for m in meter.snapshot().meters] == [0, 0, 1200]
    assert meter.snapshot().extra["state_out"] == 1
    relay(meter, "Relay_1", "close")
    relay(meter, "relay_2", "closed")  # lower case, older clients' "closed"
    assert [round(m.power_w) for m in meter.snapshot().meters] == [850, 430, 1200]
    assert meter.snapshot().extra["state_out"] == 4
    relay(meter, "RELAY_2", "open")
    assert meter.snapshot().extra["state_out"] == 3


async def test_set_relay_with_a_duration_returns_after_it() -> None:
    b = make_bench()
    _, meter = rig(b)
    relay(meter, "Relay_1", "close", duration=1, meter_password="00000000")
    assert meter.channels[0].on is True
    await b.advance(0.999)
    assert meter.channels[0].on is True
    await b.advance(0.001)
    assert meter.channels[0].on is False
    relay(meter, "Relay_2", "close", duration=0)  # 0 holds
    await b.advance(86_400)
    assert meter.channels[1].on is True


@pytest.mark.parametrize(
    ("command", "params", "message"),
    [
        ("SetRelay", {"relay": "Relay_3", "status": "close"}, "relay must be Relay_1 or Relay_2"),
        ("SetRelay", {"relay": "Relay_1", "status": "ajar"}, "status must be open or close"),
        (
            "SetRelay",
            {"relay": "Relay_1", "status": "close", "duration": 10000},
            "duration must be 0-9999",
        ),
        (
            "SetRelay",
            {"relay": "Relay_1", "status": "close", "duration": -1},
            "duration must be 0-9999",
        ),
        (
            "SetRelay",
            {"relay": "Relay_1", "status": "close", "meter_password": "12345678"},
            "meter password rejected",
        ),
        (
            "SetRelay",
            {"relay": "Relay_1", "status": "close", "meter_password": "123"},
            "meter_password must be 8 characters",
        ),
        (
            "SetMeterPassword",
            {"new_password": "1234567"},
            "new_password must be exactly 8 characters",
        ),
        ("SetCTRatio", {"ct_ratio": "250"}, "ct_ratio must be one of 100, 200, 400"),
        (
            "SetTime",
            {
                "year": "2026",
                "month": "02",
                "day": "30",
                "hour": "10",
                "minutes": "00",
                "seconds": "00",
            },
            "not a valid date",
        ),
        (
            "SetTime",
            {
                "year": "26",
                "month": "02",
                "day": "10",
                "hour": "10",
                "minutes": "00",
                "seconds": "00",
            },
            "year must be a 4-digit string",
        ),
        ("SetMaxDemandResetInterval", {"interval": 5}, "interval must be one of 0, 1, 2, 3, 4"),
        (
            "SetMaxDemandPeriod",
            {"max_demand_period": 4},
            "max_demand_period must be one of 1, 2, 3",
        ),
        ("SetLCD", {"display_fields": []}, "display_fields must be a list of 1-40 items"),
        ("SetLCD", {"display_fields": [1] * 41}, "display_fields must be a list of 1-40 items"),
        ("SetLCD", {"display_fields": ["kWh_Tot", "Watts_Of_Love"]}, "unknown display field"),
        ("SetLCD", {"display_fields": [46]}, "unknown display field"),
        ("SetLCD", {"display_fields": ["\u0661"]}, "unknown display field"),  # Arabic-Indic 1
        (
            "SetPulseInputRatio",  # digits of another script: not a number a meter takes
            {"pulse_line": 1, "pulse_input_ratio": "\u0661\u0660"},
            "pulse_input_ratio must be a whole number",
        ),
        (
            "SetPulseInputRatio",
            {"pulse_line": 4, "pulse_input_ratio": 10},
            "pulse_line must be 1-3",
        ),
        (
            "SetPulseInputRatio",
            {"pulse_line": 1, "pulse_input_ratio": 10000},
            "pulse_input_ratio must be 0-9999",
        ),
        (
            "SetPulseOutputRatio",
            {"pulse_output_ratio": 3},
            "pulse_output_ratio must be one of 1, 2, 4",
        ),
        ("SetHolidayDates", {"holidays": [{"month": 2, "day": 30}]}, "no day 30 in month 2"),
        ("SetHolidayDates", {"holidays": [{"month": 1, "day": 1}] * 21}, "at most 20"),
        ("SetSchedule", {"schedule": 7, "periods": []}, "schedule must be 1-6"),
        (
            "SetSchedule",
            {"schedule": 1, "periods": [{"hour": 7, "minute": 0, "tariff": 5}]},
            "tariff must be 1-4",
        ),
        (
            "SetSchedule",
            {"schedule": 1, "periods": [{"hour": 1, "minute": 0, "tariff": 1}] * 5},
            "at most 4",
        ),
        (
            "SetWeekendHolidaySchedules",
            {"weekend_schedule": 0, "holiday_schedule": 2},
            "weekend_schedule must be 1-6",
        ),
    ],
)
async def test_each_rule_rejects_a_bad_value_with_a_message_and_changes_nothing(
    command: str, params: dict[str, Any], message: str
) -> None:
    b = make_bench()
    _, meter = rig(b)
    before = meter.nvram()
    with pytest.raises(InvalidCommand) as err:
        run(meter, command, **params)
    assert message in err.value.message
    after = meter.nvram()
    assert after == before


async def test_settings_are_held_and_reported() -> None:
    b = make_bench()
    _, meter = rig(b)
    run(meter, "SetCTRatio", ct_ratio="400")
    run(meter, "SetLCD", display_fields=["kWh_Tot", 12, "28", "Calc_Fwd_kWh"])
    run(meter, "SetPulseInputRatio", pulse_line=2, pulse_input_ratio=1000)
    run(meter, "SetPulseOutputRatio", pulse_line=3, pulse_output_ratio=800)
    run(meter, "SetMaxDemandPeriod", max_demand_period=3)
    run(meter, "SetTime", year="2030", month="01", day="02", hour="03", minutes="04", seconds="05")
    ekm = meter.snapshot().extra["ekm"]
    assert ekm["ct_ratio"] == 400 and ekm["lcd"] == [1, 12, 28, 51]
    assert ekm["pulse_input_ratio"] == [1, 1000, 1] and ekm["pulse_output_ratio"] == [1, 1, 800]
    assert ekm["max_demand_period"] == 3
    assert meter.meter_time().strftime("%Y-%m-%d %H:%M:%S") == "2030-01-02 03:04:05"
    run(meter, "SetMeterPassword", new_password="87654321")
    with pytest.raises(InvalidCommand):
        relay(meter, "Relay_1", "close")  # the default password no longer works
    relay(meter, "Relay_1", "close", meter_password="87654321")


async def test_schedules_and_tariff_data() -> None:
    b = make_bench()
    _, meter = rig(b)
    relay(meter, "Relay_1", "close")
    periods = [{"hour": 0, "minute": 0, "tariff": 2}, {"hour": 12, "minute": 30, "tariff": 3}]
    run(meter, "SetSchedule", schedule=1, periods=periods)
    run(meter, "SetSchedule", schedule=2, periods=periods)
    run(meter, "SetWeekendHolidaySchedules", weekend_schedule=2, holiday_schedule=2)
    run(meter, "SetHolidayDates", holidays=[{"month": 12, "day": 25}])
    got = run(meter, "GetSchedules")
    assert got["schedules"][0] == {"schedule": 1, "periods": periods}
    assert got["weekend_schedule"] == 2 and got["holidays"] == [{"month": 12, "day": 25}]
    await b.advance(3600)
    tariffs = run(meter, "GetTariffData")
    assert sum(t["kWh"] for t in tariffs["tariffs"]) == pytest.approx(tariffs["kWh_Tot"], abs=0.01)
    assert tariffs["tariffs"][0]["kWh"] == 0  # tariff 1 is never in force under this schedule
    run(meter, "SetZeroResettableKWH")
    assert run(meter, "GetTariffData")["kWh_Rst"] == 0


async def test_the_gateway_answers_after_varying_delays_out_of_order() -> None:
    b = make_bench()
    gw, _ = rig(b)
    ids = [f"m{i:02d}" for i in range(20)]
    for msg_id in ids:
        gw.handle(FirmwareCommand("push3.command", {
            "msg_id": msg_id, "command": "SetRelay", "target": "meter", "target_id": ADDRESS,
            "params": {"relay": "Relay_1", "status": "close"}, "channel": "c1"}))  # fmt: skip
    assert not [e for e in b.events if e.reason == "push3"]
    await b.advance(1.5)
    answers = [e for e in b.events if e.kind is StatusKind.FUNCTION and e.reason == "push3"]
    got = [e.data["msg_id"] for e in answers]
    assert sorted(got) == ids and got != ids
    assert all(e.topic == "push3/c1" and e.data["success"] for e in answers)
    assert all(e.data["timestamp"] == T0 for e in answers)
    assert len({e.ts for e in answers}) > 10


async def test_failures_come_back_as_success_false_and_an_unknown_meter_does_not_answer() -> None:
    b = make_bench()
    gw, _ = rig(b)
    for msg_id, target, params in (
        ("bad", ADDRESS, {"relay": "Relay_9", "status": "close"}),
        ("nobody", "000000000001", {"relay": "Relay_1", "status": "close"}),
    ):
        msg = {"msg_id": msg_id, "command": "SetRelay", "target": "meter", "target_id": target,
               "params": params, "channel": "c"}  # fmt: skip
        gw.handle(FirmwareCommand("push3.command", msg))
    await b.advance(2)
    answers = {e.data["msg_id"]: e.data for e in b.events if e.reason == "push3"}
    assert answers["bad"]["success"] is False and "Relay_1 or Relay_2" in answers["bad"]["error"]
    assert answers["nobody"] == {**answers["nobody"], "success": False,
                                 "error": "meter 000000000001 did not respond"}  # fmt: skip


async def test_queued_commands_survive_a_reboot_and_wait_while_offline() -> None:
    b = make_bench()
    gw, meter = rig(b)
    gw.handle(FirmwareCommand("push3.command", {"msg_id": "q1", "command": "SetRelay",
              "target": "meter", "target_id": ADDRESS,
              "params": {"relay": "Relay_2", "status": "close"}, "channel": "c"}))  # fmt: skip
    gw.power_cycle()
    gw.set_online(False)
    await b.advance(5)
    assert meter.channels[1].on is False
    gw.set_online(True)
    await b.advance(0)
    assert meter.channels[1].on is True
    assert [e.data["msg_id"] for e in b.events if e.reason == "push3"] == ["q1"]


async def test_a_meter_off_the_network_did_not_respond() -> None:
    b = make_bench()
    gw, meter = rig(b)
    meter.set_online(False)
    gw.handle(FirmwareCommand("push3.command", {"msg_id": "m", "command": "SetRelay",
              "target": "meter", "target_id": ADDRESS,
              "params": {"relay": "Relay_1", "status": "close"}, "channel": "c"}))  # fmt: skip
    await b.advance(2)
    [answer] = [e.data for e in b.events if e.reason == "push3"]
    assert (answer["success"], answer["error"]) == (False, f"meter {ADDRESS} did not respond")


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -float("inf"), "1e3"])
async def test_a_non_finite_or_non_integer_duration_is_refused(duration: Any) -> None:
    _, meter = rig(make_bench())
    with pytest.raises(InvalidCommand, match="duration"):
        relay(meter, "Relay_1", "close", duration=duration)
    assert meter.channels[0].on is False


def load(b: Bench, line: int, watts: float) -> None:
    b.fleet.apply(2, SimAction("load", channel=line, load={"type": "constant", "watts": watts}))


async def test_the_tariff_registers_add_up_to_the_totals() -> None:
    b = make_bench()
    _, meter = rig(b)
    await b.advance(1234)  # energy metered before any command or update
    periods = [{"hour": h, "minute": 0, "tariff": t} for h, t in ((0, 2), (6, 3), (12, 4), (18, 1))]
    run(meter, "SetSchedule", schedule=1, periods=periods)
    for _ in range(24):
        await b.advance(3600)
        relay(meter, "Relay_1", "open" if meter.channels[0].on else "close")
    data = run(meter, "GetTariffData")
    kwh = [t["kWh"] for t in data["tariffs"]]
    assert all(k > 0 for k in kwh)
    assert round(sum(kwh), 3) == data["kWh_Tot"]
    assert round(sum(t["rev_kWh"] for t in data["tariffs"]), 3) == data["Rev_kWh_Tot"]


@pytest.mark.parametrize(("period", "expected_w"), [(1, 6000.0), (2, 3000.0), (3, 1500.0)])
async def test_max_demand_is_averaged_over_the_demand_period(
    period: int, expected_w: float
) -> None:
    b = make_bench()
    _, meter = rig(b)
    for line in range(3):
        load(b, line, 0.0)
    run(meter, "SetMaxDemandPeriod", max_demand_period=period)
    await b.advance(3600 - b.clock.now() % 3600)  # on the hour: a demand interval begins
    load(b, 2, 6000.0)  # line 3 (never switched): 6 kW for a quarter of an hour
    await b.advance(900)
    load(b, 2, 0.0)
    await b.advance(2700 + 1)
    assert run(meter, "GetTariffData")["Max_Demand"] == pytest.approx(expected_w, rel=0.01)


async def test_a_gateway_finds_its_meter_without_walking_the_fleet() -> None:
    """Counted as tests/api/test_registration_scale.py counts: the lines one command on a
    meter runs beside 40 and 800 other twins are the same."""
    counts = []
    for others in (40, 800):
        b = make_bench()
        for i in range(others):  # registered before the meter: a walk would pass them all
            b.fleet.add(Device(100 + i, 1, f"SP{i:06d}", "SHPLG-1", "plug", T0))
        gw, meter = rig(b)
        msg = {"command": "SetRelay", "target": "meter", "target_id": ADDRESS,
               "params": {"relay": "Relay_1", "status": "close"}}  # fmt: skip
        gw.run(msg)  # anything built once is built now
        counter = Steps()
        with counter.on():
            ok, error, _ = gw.run(msg)
        assert (ok, error) == (True, None) and meter.channels[0].on
        counts.append(counter.count)
    assert counts[1] <= counts[0] * 1.05, (
        f"{counts[0]} lines beside 40 twins, {counts[1]} beside 800"
    )
    # a meter built again (a restart) is found; one removed answers no more
    b.fleet.add(meter.device)
    assert gw.run(msg)[0]
    b.fleet.remove(meter.device.id)
    assert gw.run(msg) == (False, f"meter {ADDRESS} did not respond", None)
