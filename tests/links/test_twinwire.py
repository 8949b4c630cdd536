"""The simulated devices' wire: stable MQTT ids, shards that keep a gateway with its meters,
and commands, results and reports that cross it unchanged."""

from __future__ import annotations

import pytest

from switchgear.core.model import (
    Action,
    ChannelState,
    CommandResult,
    Configure,
    Device,
    DeviceEvent,
    DeviceState,
    FirmwareCommand,
    PowerOn,
    SettingsPatch,
    StatusKind,
    Switch,
)
from switchgear.errors import DeviceOffline, InvalidCommand, InvalidInput
from switchgear.links import twinwire as tw
from switchgear.links.fleetlink import record_ids
from switchgear.links.fleetnode import parse_shard


def device(model: str, serial: str, **attrs: str) -> Device:
    return Device(7, 1, serial, model, serial, 0.0, attrs=attrs)


def test_a_plug_has_a_gen1_id_and_prefix_the_same_in_every_process() -> None:
    plug = device("SHPLG-1", "SPG123")
    mqtt_id = tw.mqtt_id(plug)
    digits = mqtt_id.removeprefix("shellyplug-")
    assert len(digits) == 6 and digits == digits.upper() and int(digits, 16) >= 0
    assert tw.mqtt_id(device("SHPLG-1", "SPG123")) == mqtt_id
    assert tw.online_topic(plug) == f"shellies/{mqtt_id}/online"
    pc = device("power-controller-v10", "PC-1")
    assert tw.rpc_topic(pc) == f"{tw.mqtt_id(pc)}/rpc" and tw.mqtt_id(pc).startswith("sgpowerctl-")
    assert tw.mqtt_id(device("SHPLG-1", "SPG124")) != mqtt_id


def test_a_gateways_meters_live_in_its_shard() -> None:
    for n in (2, 3, 5):
        for k in range(30):
            gw = device("PUSH3", f"GW{k}")
            meter = device("OMNIMETER-V4", f"3000{k:04d}", gateway=f"GW{k}")
            assert tw.shard_of(gw, n) == tw.shard_of(meter, n)
    shards = {tw.shard_of(device("SHPLG-1", f"S{k}"), 3) for k in range(60)}
    assert shards == {0, 1, 2}


@pytest.mark.parametrize("text", ["1", "2/2", "-1/2", "a/b", "1/2/3"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_shard(text)
    assert parse_shard("1/2") == (1, 2)


def test_commands_cross_the_wire_unchanged() -> None:
    pc = device("power-controller-v10", "PC-1")
    commands = [
        Switch(Action.TOGGLE, None, 5.0, 60.0),
        Configure(SettingsPatch(power_on=PowerOn.LAST, max_power_w=1000.0), 0),
        FirmwareCommand("pc.command", {"name": "off"}),
    ]
    for cmd in commands:
        method, params = tw.encode_command(pc, cmd)
        frame = tw.loads(tw.request(1, "me", method, params))
        assert frame is not None
        assert tw.decode_command(pc, frame["method"], frame["params"]) == cmd
    assert tw.encode_command(pc, commands[2])[0] == "PowerController.pc.command"
    assert tw.decode_command(pc, "PowerController.GetStatus", {}) is None
    with pytest.raises(InvalidCommand):
        tw.decode_command(pc, "Switch.Set", {"action": "on"})  # another family's method


def test_results_errors_and_reports_cross_the_wire() -> None:
    result = CommandResult(True, (103,), {"update": {"on": False}})
    body = tw.loads(tw.answer(3, "dev", "me", tw.encode_result(result)))
    assert body is not None and tw.decode_result(body["result"]) == result
    err = tw.loads(tw.error_answer(4, "dev", "me", DeviceOffline("device is offline")))
    assert err is not None
    with pytest.raises(DeviceOffline, match="device is offline"):
        tw.raise_error(err["error"])
    state = DeviceState(99, 5.0, True, (ChannelState(0, True, toggle_at=65.0),))
    ev = DeviceEvent(99, 5.0, StatusKind.RELAY, "api", {"on": True}, state, 0, True)
    back = tw.parse_event(7, tw.notify_event("dev", ev))
    assert back is not None and back.device_id == 7 and back.state.device_id == 7
    assert back.state.channels == state.channels and back.reason == "api"
    assert tw.parse_event(7, b"not json") is None


def test_a_trips_events_cross_the_wire_in_one_message_each_state_once() -> None:
    tripped = DeviceState(99, 5.0, True, (ChannelState(0, False),))
    later = DeviceState(99, 5.5, True, (ChannelState(0, False),))
    evs = [
        DeviceEvent(99, 5.0, StatusKind.TRIGGER, "ffr", {"frequency": 59.6}, tripped, 0),
        DeviceEvent(99, 5.0, StatusKind.RELAY, "ffr", {"on": False}, tripped, 0),
        DeviceEvent(99, 5.5, StatusKind.UPDATE, "power", {}, later, None, False),
    ]
    bodies = [tw.dumps(tw.event_body(evs[0])), tw.dumps(tw.event_body(evs[1], with_state=False)),
              tw.dumps(tw.event_body(evs[2]))]  # fmt: skip
    payload = tw.notify_events("dev", bodies)
    assert payload.count(b'"state"') == 2  # the relay event's state is the trigger's
    assert tw.loads(payload) == {"src": "dev", "dst": "switchgear", "method": "NotifyEvent",
                                 "params": {"events": [tw.loads(b) for b in bodies]}}  # fmt: skip
    back = tw.parse_events(7, payload)
    assert [(e.kind, e.reason, e.ts, e.record) for e in back] == [
        (StatusKind.TRIGGER, "ffr", 5.0, True), (StatusKind.RELAY, "ffr", 5.0, True),
        (StatusKind.UPDATE, "power", 5.5, False),
    ]  # fmt: skip
    assert back[1].state == back[0].state and back[1].state.device_id == 7
    assert back[2].state.ts == 5.5 and back[1].data == {"on": False}
    # the one-event form still reads; a malformed event keeps those before it
    assert [e.reason for e in tw.parse_events(7, tw.notify_event("dev", evs[1]))] == ["ffr"]
    broken = tw.notify_events("dev", [bodies[0], tw.dumps({"kind": "relay"})])
    assert [e.kind for e in tw.parse_events(7, broken)] == [StatusKind.TRIGGER]
    assert tw.parse_events(7, b"not json") == []


def test_each_event_of_one_message_has_its_own_record_id() -> None:
    payload = b'{"method":"NotifyEvent"}'
    ids = record_ids("t/events/rpc", payload, 3)
    assert len(set(ids)) == 3 and record_ids("t/events/rpc", payload, 1) == ids[:1]
    assert record_ids("t/events/rpc", payload, 3) == ids  # every worker gives the same ids
    assert record_ids("t/other/events/rpc", payload, 3)[0] not in ids  # another device's
