"""Relay behaviour a user notices: delays, flip-backs, power-on state, offline."""

from __future__ import annotations

import pytest

from switchgear.core.model import Action, Configure, PowerOn, SettingsPatch, Switch
from switchgear.errors import DeviceOffline, InvalidCommand, InvalidInput
from tests.devices.harness import T0, make_bench


async def test_a_60_s_delayed_switch_fires_at_exactly_plus_60_s() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Switch(Action.ON, 0, delay=60))
    await b.advance(59.999)
    assert plug.channels[0].on is False
    await b.advance(0.001)
    assert plug.channels[0].on is True
    fired = b.relay_events("timer")
    assert [e.ts for e in fired] == [T0 + 60]


async def test_a_5_s_flip_back_returns_the_relay() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Switch(Action.ON, 0, duration=5))
    assert plug.channels[0].on is True
    assert plug.snapshot().channels[0].toggle_at == T0 + 5
    await b.advance(5)
    assert plug.channels[0].on is False
    back = b.relay_events("auto")[-1]
    assert back.ts == T0 + 5 and back.data == {"on": False, "toggleIn": 0.0}


async def test_auto_off_engages_whenever_turned_on_and_auto_on_whenever_off() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(auto_off_s=10, auto_on_s=20)))
    plug.handle(Switch(Action.ON, 0))
    await b.advance(10)
    assert plug.channels[0].on is False
    await b.advance(20)
    assert plug.channels[0].on is True
    assert [e.ts - T0 for e in b.relay_events("auto")] == [10, 30]
    plug.handle(Configure(SettingsPatch(auto_off_s=0, auto_on_s=0)))
    plug.handle(Switch(Action.ON, 0))
    await b.advance(3600)
    assert plug.channels[0].on is True


async def test_a_newer_command_replaces_the_pending_flip() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Switch(Action.ON, 0, delay=60))
    plug.handle(Switch(Action.OFF, 0))
    await b.advance(120)
    assert plug.channels[0].on is False
    assert b.relay_events("timer") == []


async def test_delay_then_duration() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Switch(Action.ON, 0, delay=10, duration=30))
    await b.advance(10)
    assert plug.channels[0].on is True
    await b.advance(30)
    assert plug.channels[0].on is False


@pytest.mark.parametrize(
    ("power_on", "before", "after"),
    [
        (PowerOn.OFF, True, False),
        (PowerOn.ON, False, True),
        (PowerOn.LAST, True, True),
        (PowerOn.LAST, False, False),
    ],
)
async def test_power_cycle_applies_the_power_on_state(
    power_on: PowerOn, before: bool, after: bool
) -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(power_on=power_on)))
    plug.handle(Switch(Action.ON if before else Action.OFF, 0))
    plug.power_cycle()
    assert plug.channels[0].on is after
    assert b.relay_events("reboot")[-1].data["on"] is after


async def test_pending_timers_survive_a_restart_at_their_absolute_due_time() -> None:
    b = make_bench()
    plug = b.add()
    plug.handle(Configure(SettingsPatch(power_on=PowerOn.LAST)))
    plug.handle(Switch(Action.ON, 0, delay=100))
    await b.advance(40)
    saved = b.nvram[1]
    b.fleet.remove(1)  # the process dies
    again = b.add(nvram=saved)
    await b.advance(59)
    assert again.channels[0].on is False
    await b.advance(1)
    assert again.channels[0].on is True
    assert b.relay_events("timer")[-1].ts == T0 + 100


async def test_an_offline_twin_refuses_commands_and_changes_nothing() -> None:
    b = make_bench()
    plug = b.add()
    plug.set_online(False)
    assert b.events[-1].state.online is False
    with pytest.raises(DeviceOffline):
        plug.handle(Switch(Action.ON, 0))
    assert plug.channels[0].on is False
    plug.set_online(True)
    assert b.events[-1].reason == "online" and b.events[-1].state.online is True


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (Switch(Action.ON, 3), "channel"),
        (Switch(Action.ON, 0, delay=-1), "delay"),
        (Switch(Action.ON, 0, delay=float("nan")), "delay"),
        (Switch(Action.ON, 0, duration=0), "duration"),
        (Configure(SettingsPatch(auto_off_s=-5)), "auto_off_s"),
        (Configure(SettingsPatch(auto_on_s=float("inf"))), "auto_on_s"),
        (Configure(SettingsPatch(max_power_w=0)), "max_power_w"),
    ],
)
async def test_bad_commands_name_the_field_and_change_nothing(command: object, field: str) -> None:
    b = make_bench()
    plug = b.add()
    before = plug.nvram()
    with pytest.raises((InvalidInput, InvalidCommand)) as err:
        plug.handle(command)  # type: ignore[arg-type]
    assert err.value.field == field
    assert plug.nvram() == before
