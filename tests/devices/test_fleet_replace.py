"""A twin built again for a device (a reload, a re-registration) takes over alone: the
one it replaces stops, and nothing it had planned reaches the cloud or its NVRAM."""

from __future__ import annotations

from switchgear.core.model import Action, Device, StatusKind, Switch
from switchgear.devices.twin import Twin
from tests.devices.harness import T0, make_bench
from tests.devices.test_powercontroller import MODEL, SEED_FFR, configure


async def test_a_replaced_twins_pending_timer_never_fires() -> None:
    b = make_bench()
    old = b.add()
    old.handle(Switch(Action.ON, 0, delay=60))
    new = b.add()  # built again with no NVRAM: nothing pending
    await b.advance(61)
    assert b.relay_events("timer") == []
    assert new.channels[0].on is False and old.channels[0].on is False
    # the new twin behaves as any other
    new.handle(Switch(Action.ON, 0, delay=30))
    await b.advance(30)
    assert [e.ts - T0 for e in b.relay_events("timer")] == [91]
    assert new.channels[0].on is True


async def test_a_twin_reloaded_from_its_nvram_fires_its_timer_once() -> None:
    b = make_bench()
    old = b.add()
    old.handle(Switch(Action.ON, 0, delay=60))
    await b.advance(20)
    new = b.add(nvram=b.nvram[1])  # the pending flip travels in the NVRAM
    await b.advance(40)
    assert [e.ts - T0 for e in b.relay_events("timer")] == [60]
    assert new.channels[0].on is True


async def test_a_replaced_twin_stops_its_periodic_updates() -> None:
    b = make_bench()
    first = b.add()
    period = first.sample_period_s()
    b.add()
    before = len(b.events)
    await b.advance(period * 10)
    updates = [e for e in b.events[before:] if e.kind is StatusKind.UPDATE and e.reason == "auto"]
    assert [e.ts - T0 for e in updates] == [period * i for i in range(1, 11)]


async def test_a_replaced_controllers_ffr_restore_and_schedule_stay_silent() -> None:
    b = make_bench()
    device = Device(7, 1, "PC-REPLACE01-001", MODEL, "pc", T0)
    old = b.fleet.add(device)
    assert configure(old, ffr=SEED_FFR) == (True, (108,))
    entries = [{"name": "off", "when": T0 + 100, "repeat": 3600}]
    assert configure(old, schedule=entries) == (True, (117,))
    b.fleet.set_grid(1, frequency_hz=59.6)
    await b.advance(1)
    b.fleet.set_grid(1, frequency_hz=59.85)  # back: the load returns after the delay
    assert not old.relay.on and not old.ffr["tripped"]
    new = b.fleet.add(device)  # built again with the seed settings
    before = len(b.events)
    await b.advance(7200)
    heard = [(e.kind.value, e.reason) for e in b.events[before:] if e.kind is not StatusKind.UPDATE]
    assert heard == [] and new.relay.on
    assert b.nvram[7] == new.nvram()  # a restart brings back the new twin, not the old


async def test_a_trip_report_queued_when_the_twin_is_replaced_never_goes_out() -> None:
    """The relay opened, its log waits behind the instant's timers (`soon`); the twin is
    built again meanwhile: the cloud hears the new twin's boot last, and its NVRAM stays."""
    b = make_bench()
    device = Device(7, 1, "PC-REPLACE01-002", MODEL, "pc", T0)
    old = b.fleet.add(device)
    assert configure(old, ffr=SEED_FFR) == (True, (108,))
    b.fleet.set_grid(1, frequency_hz=59.6)
    trip_at = old._timers["ffr_trip"].due
    replaced: list[Twin] = []
    b.scheduler.call_at(trip_at, lambda _: replaced.append(b.fleet.add(device)))
    b.events.clear()
    await b.advance(1)
    assert not old.relay.on and replaced[0].relay.on
    assert [(e.kind.value, e.reason) for e in b.events if e.kind is not StatusKind.UPDATE] == [
        ("relay", "reboot")
    ]
    assert b.nvram[7] == replaced[0].nvram()
