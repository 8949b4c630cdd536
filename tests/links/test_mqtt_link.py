"""The MQTT link against the in-memory broker: Shelly topics in, engine events out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from switchgear.core.clock import VirtualClock
from switchgear.core.model import Action, Device, DeviceEvent, Switch
from switchgear.core.scheduler import Scheduler
from switchgear.errors import DeviceOffline, InvalidCommand
from switchgear.links.mqtt import MqttLink
from switchgear.links.mqttclient import MemoryBroker, matches
from switchgear.links.shelly import PROTOCOLS, canonical_mqtt_id

GEN1 = "shellyplug-A1B2C3"
GEN2 = "shellyplusplugs-a8032ab12345"


class Rig:
    """A link on a manual clock, a broker fake, and the events and NVRAM it produced."""

    def __init__(self) -> None:
        self.clock = VirtualClock(start=1_700_000_000.0, speed=0)
        self.scheduler = Scheduler(self.clock)
        self.broker = MemoryBroker()
        self.events: list[DeviceEvent] = []
        self.nvram: dict[int, Any] = {}
        self.link = self.new_link()

    def new_link(self) -> MqttLink:
        link = MqttLink(self.clock, self.scheduler, self.put_nvram, self.broker.transport())
        link.attach(self.events.append)
        return link

    def put_nvram(self, device_id: int, build: Any) -> None:
        self.nvram[device_id] = build()

    def publish(self, topic: str, payload: str | dict[str, Any]) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        self.broker.publish(topic, body.encode())

    def relays(self) -> list[tuple[str, bool]]:
        return [(e.reason, e.data["on"]) for e in self.events if e.kind == "relay" and e.record]


def device(protocol: str, mqtt_id: str, device_id: int = 1) -> Device:
    return Device(device_id, 1, mqtt_id, "SHPLG-1", mqtt_id, 0.0,
                  attrs={"protocol": protocol, "mqtt_id": mqtt_id}, simulated=False)  # fmt: skip


def gen1_plug(rig: Rig, *, answers: bool = True) -> list[str]:
    """A Gen1 plug on the broker: it obeys relay commands and `update` as the real one."""
    state = {"on": "off"}
    got: list[str] = []
    me = rig.broker.transport(GEN1)

    def on_message(topic: str, payload: bytes) -> None:
        got.append(f"{topic} {payload.decode()}")
        if not answers:
            return
        if topic.endswith("/relay/0/command"):
            state["on"] = payload.decode()
        rig.publish(f"shellies/{GEN1}/relay/0", state["on"])
        rig.publish(f"shellies/{GEN1}/relay/0/power", "42.5" if state["on"] == "on" else "0")

    me.start(on_message, lambda up: None)
    me.filters |= {f"shellies/{GEN1}/relay/0/command", f"shellies/{GEN1}/command"}
    return got


async def settle() -> None:
    for _ in range(5):  # spawned publishes and their answers are synchronous on the fake
        await asyncio.sleep(0)


async def gen1_adopted(rig: Rig) -> list[str]:
    """A Gen1 plug on the broker, adopted by the rig's link (started): what it was sent."""
    got = gen1_plug(rig)
    await rig.link.start()
    await rig.link.add(device("shelly-gen1", GEN1), None)
    await settle()
    return got


def test_topic_filters_match_as_mqtt_does() -> None:
    assert matches("shellies/+/relay/0/#", "shellies/x/relay/0")
    assert matches("shellies/+/relay/0/#", "shellies/x/relay/0/power")
    assert not matches("shellies/+/relay/0", "shellies/x/relay/0/power")
    assert not matches("a/+", "a")


@pytest.mark.parametrize(
    ("protocol", "typed", "spelled"),
    [("shelly-gen1", "shellyplug-a1b2c3", "shellyplug-A1B2C3"),
     ("shelly-gen1", "ShellyPlug-S-c45bbe6b1a2f", "shellyplug-s-C45BBE6B1A2F"),
     ("shelly-gen2", "shellyplusplugs-A8032AB12345", "shellyplusplugs-a8032ab12345"),
     ("shelly-gen2", "SHELLYPRO4PM-A8032AB12345", "shellypro4pm-a8032ab12345"),
     ("shelly-gen1", "shellyplug-CLI001", "shellyplug-CLI001"),  # not a device's own id
     ("shelly-gen2", "kitchen-plug", "kitchen-plug")],
)  # fmt: skip
def test_an_mqtt_id_is_spelled_as_the_device_spells_it_on_its_topics(
    protocol: str, typed: str, spelled: str
) -> None:
    assert canonical_mqtt_id(PROTOCOLS[protocol], typed) == spelled


async def test_gen1_switch_is_acknowledged_by_the_relay_report() -> None:
    rig = Rig()
    got = await gen1_adopted(rig)  # the link asked for its state: the answer brings it online
    assert got == [f"shellies/{GEN1}/command update"]
    result = await rig.link.send(1, Switch(Action.ON))
    assert result.ok
    assert rig.relays() == [("api", True)]
    assert rig.events[-1].state.meters[0].power_w == 42.5


async def test_gen1_timed_switch_flips_back_on_the_servers_clock_and_survives_restart() -> None:
    rig = Rig()
    await gen1_adopted(rig)
    await rig.link.send(1, Switch(Action.ON, duration=60))
    assert rig.events[-1].state.channels[0].toggle_at == rig.clock.now() + 60
    assert rig.nvram[1]["pending"]["due"] == rig.clock.now() + 60
    # a restart: a new link restores the pending flip from NVRAM
    await rig.link.close()
    rig.link = rig.new_link()
    await rig.link.start()
    await rig.link.add(device("shelly-gen1", GEN1), rig.nvram[1])
    await settle()
    await rig.scheduler.advance(59)
    await settle()
    assert rig.relays() == [("api", True)]
    await rig.scheduler.advance(1)
    await settle()
    assert rig.relays() == [("api", True), ("auto", False)]
    assert rig.nvram[1]["pending"] is None


async def test_gen1_energy_counts_on_across_a_device_reboot() -> None:
    rig = Rig()
    await rig.link.start()
    await rig.link.add(device("shelly-gen1", GEN1), None)
    rig.publish(f"shellies/{GEN1}/relay/0/energy", "600")  # watt-minutes: 10 Wh
    rig.publish(f"shellies/{GEN1}/relay/0/energy", "120")  # rebooted: counts from 0 again
    assert rig.events[-1].state.meters[0].energy_wh == 12.0
    assert rig.nvram[1]["energy_base_wh"] == 10.0


async def test_last_will_makes_it_offline_and_commands_get_device_offline() -> None:
    rig = Rig()
    await gen1_adopted(rig)
    rig.publish(f"shellies/{GEN1}/online", "false")
    assert rig.events[-1].kind == "connection" and not rig.events[-1].state.online
    with pytest.raises(DeviceOffline):
        await rig.link.send(1, Switch(Action.ON))
    rig.publish(f"shellies/{GEN1}/online", "true")
    await settle()
    assert rig.events[-1].state.online


async def test_a_device_that_never_answers_leaves_the_command_waiting() -> None:
    rig = Rig()
    gen1_plug(rig, answers=False)
    await rig.link.start()
    await rig.link.add(device("shelly-gen1", GEN1), None)
    rig.publish(f"shellies/{GEN1}/online", "true")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # the engine bounds the wait the same way
            await rig.link.send(1, Switch(Action.ON))
    assert rig.relays() == []


async def test_gen2_rpc_answer_by_id_errors_and_duplicates() -> None:
    rig = Rig()
    me = rig.broker.transport(GEN2)
    requests: list[dict[str, Any]] = []

    def on_message(topic: str, payload: bytes) -> None:
        req = json.loads(payload)
        requests.append(req)
        if req["method"] == "Switch.GetStatus":
            rig.publish(f"{req['src']}/rpc", {"id": req["id"], "src": GEN2, "dst": req["src"],
                        "result": {"id": 0, "output": False, "apower": 0.0}})  # fmt: skip
            return
        answer: dict[str, Any] = {"id": req["id"], "src": GEN2, "dst": req["src"]}
        if req["params"].get("toggle_after") == 5:
            answer["error"] = {"code": -103, "message": "Invalid argument"}
        else:
            answer["result"] = {"was_on": False}
        rig.publish(f"{req['src']}/rpc", answer)
        rig.publish(f"{req['src']}/rpc", answer)  # QoS 1 may deliver twice

    me.start(on_message, lambda up: None)
    me.filters.add(f"{GEN2}/rpc")
    await rig.link.start()
    await rig.link.add(device("shelly-gen2", GEN2), None)
    rig.publish(f"{GEN2}/online", "true")
    await settle()
    result = await rig.link.send(1, Switch(Action.ON, duration=60))
    assert result.ok
    assert requests[-1]["params"] == {"id": 0, "on": True, "toggle_after": 60}
    assert rig.relays() == [("api", True)]
    assert rig.events[-1].state.channels[0].toggle_at == rig.clock.now() + 60
    refused = await rig.link.send(1, Switch(Action.OFF, duration=5))
    assert not refused.ok and refused.error == "Invalid argument"
    # the device runs the flip-back itself and says so
    rig.publish(f"{GEN2}/events/rpc", {"src": GEN2, "dst": "x", "method": "NotifyStatus",
                "params": {"ts": 1.0, "switch:0": {"id": 0, "output": False}}})  # fmt: skip
    assert rig.relays() == [("api", True), ("auto", False)]
    with pytest.raises(InvalidCommand):
        await rig.link.send(1, Switch(Action.ON, channel=1))


async def test_losing_the_broker_takes_devices_offline_and_reconnect_resyncs() -> None:
    rig = Rig()
    got = await gen1_adopted(rig)
    transport = rig.broker.transports[0]
    transport.set_up(False)
    assert not rig.events[-1].state.online
    with pytest.raises(DeviceOffline):
        await rig.link.send(1, Switch(Action.ON))
    transport.set_up(True)
    await settle()
    assert got.count(f"shellies/{GEN1}/command update") == 2
    assert rig.events[-1].state.online


async def test_an_overpower_report_is_one_trigger_however_often_it_repeats() -> None:
    rig = Rig()
    await rig.link.start()
    await rig.link.add(device("shelly-gen1", GEN1), None)
    rig.publish(f"shellies/{GEN1}/relay/0", "on")
    for _ in range(3):  # the plug republishes its state every update period
        rig.publish(f"shellies/{GEN1}/relay/0", "overpower")
    triggers = [e for e in rig.events if e.kind == "trigger"]
    assert len(triggers) == 1 and triggers[0].reason == "overpower"
    assert rig.relays() == [("device", True), ("overpower", False)]
    assert rig.events[-1].state.channels[0].overpower


async def test_a_retained_report_after_the_last_will_is_not_the_device_back() -> None:
    rig = Rig()
    got = await gen1_adopted(rig)
    rig.publish(f"shellies/{GEN1}/online", "false")
    rig.publish(f"shellies/{GEN1}/relay/0", "on")  # what a "retain" plug left on the broker
    assert not rig.events[-1].state.online
    with pytest.raises(DeviceOffline):
        await rig.link.send(1, Switch(Action.ON))
    # it came back while the server was off the broker (its hello missed): after the
    # server's reconnect, its answer to the state request is the device itself again
    transport = rig.broker.transports[0]
    transport.set_up(False)
    rig.publish(f"shellies/{GEN1}/online", "true")
    transport.set_up(True)
    await settle()
    assert got.count(f"shellies/{GEN1}/command update") == 2
    assert rig.events[-1].state.online
    assert (await rig.link.send(1, Switch(Action.ON))).ok


async def test_a_gen2_command_waiting_for_its_answer_gets_device_offline_at_the_last_will() -> None:
    rig = Rig()
    me = rig.broker.transport(GEN2)
    me.start(lambda topic, payload: None, lambda up: None)  # takes requests, answers none
    me.filters.add(f"{GEN2}/rpc")
    await rig.link.start()
    await rig.link.add(device("shelly-gen2", GEN2), None)
    rig.publish(f"{GEN2}/online", "true")
    await settle()
    waiting = asyncio.ensure_future(rig.link.send(1, Switch(Action.ON)))
    await settle()
    assert not waiting.done()
    rig.publish(f"{GEN2}/online", "false")  # as a Gen1's relay wait, not the engine's timeout
    await settle()
    assert waiting.done()
    with pytest.raises(DeviceOffline):
        waiting.result()


async def test_a_switch_at_the_plug_while_a_timer_is_pending_is_the_devices_not_the_timers() -> (
    None
):
    rig = Rig()
    await gen1_adopted(rig)
    await rig.link.send(1, Switch(Action.ON, delay=60))
    rig.publish(f"shellies/{GEN1}/relay/0", "on")  # pressed at the plug before it fell due
    assert rig.relays() == [("device", True)]
    assert rig.events[-1].state.channels[0].toggle_at is None  # the timer is void
    await rig.link.send(1, Switch(Action.OFF, duration=60))  # a flip-back the server runs
    rig.publish(f"shellies/{GEN1}/relay/0", "on")  # switched back at the plug: not "auto"
    assert rig.relays()[-2:] == [("api", False), ("device", True)]


async def test_a_gen2_that_notifies_before_it_answers_records_the_switch_as_the_commands() -> None:
    """The device's NotifyStatus and its RPC answer travel on two topics, either first."""
    rig = Rig()
    me = rig.broker.transport(GEN2)

    def on_message(topic: str, payload: bytes) -> None:
        req = json.loads(payload)
        result: dict[str, Any] = {"id": 0, "output": False, "apower": 0.0}
        if req["method"] == "Switch.Set":
            result = {"was_on": False}
            rig.publish(f"{GEN2}/events/rpc", {"src": GEN2, "dst": req["src"],
                        "method": "NotifyStatus", "params": {"ts": 1.0, "switch:0":
                        {"id": 0, "output": req["params"]["on"]}}})  # fmt: skip
        rig.publish(f"{req['src']}/rpc", {"id": req["id"], "src": GEN2, "dst": req["src"],
                    "result": result})  # fmt: skip

    me.start(on_message, lambda up: None)
    me.filters.add(f"{GEN2}/rpc")
    await rig.link.start()
    await rig.link.add(device("shelly-gen2", GEN2), None)
    await settle()
    assert (await rig.link.send(1, Switch(Action.ON))).ok
    assert rig.relays() == [("api", True)]
    assert rig.events[-1].state.channels[0].on


def gen2_plug(rig: Rig, *, on: bool) -> list[dict[str, Any]]:
    """A Gen2 plug on the broker: it answers Switch.Set and Switch.GetStatus as the real
    one (notifying a change of its output), and keeps what it was asked."""
    state = {"output": on}
    requests: list[dict[str, Any]] = []
    me = rig.broker.transport(GEN2)

    def on_message(topic: str, payload: bytes) -> None:
        req = json.loads(payload)
        requests.append(req)
        result: dict[str, Any] = {"id": 0, "output": state["output"], "apower": 0.0}
        if req["method"] == "Switch.Set":
            result = {"was_on": state["output"]}
            if state["output"] != req["params"]["on"]:
                state["output"] = req["params"]["on"]
                rig.publish(f"{GEN2}/events/rpc", {"src": GEN2, "dst": req["src"],
                            "method": "NotifyStatus", "params": {"ts": 1.0, "switch:0":
                            {"id": 0, "output": state["output"]}}})  # fmt: skip
        rig.publish(f"{req['src']}/rpc", {"id": req["id"], "src": GEN2, "dst": req["src"],
                    "result": result})  # fmt: skip

    me.start(on_message, lambda up: None)
    me.filters.add(f"{GEN2}/rpc")
    return requests


async def test_a_gen2_timed_switch_survives_a_server_restart_before_the_device_flips_back() -> None:
    """The device runs the flip-back (toggle_after); the server restarted meanwhile still
    shows when, and records the flip-back as the timer's, not as a switch at the plug."""
    rig = Rig()
    requests = gen2_plug(rig, on=True)  # on already: "keep it on for another minute"
    await rig.link.start()
    await rig.link.add(device("shelly-gen2", GEN2), None)
    await settle()
    assert (await rig.link.send(1, Switch(Action.ON, duration=60))).ok
    due = rig.clock.now() + 60
    assert requests[-1]["params"] == {"id": 0, "on": True, "toggle_after": 60}
    # a restart of the server (not of the device): a new link from what was stored
    await rig.link.close()
    rig.link = rig.new_link()
    await rig.link.start()
    await rig.link.add(device("shelly-gen2", GEN2), rig.nvram[1])
    await settle()
    assert rig.events[-1].state.channels[0].toggle_at == due
    await rig.scheduler.advance(60)
    await settle()
    assert requests[-1]["method"] == "Switch.GetStatus"  # the device flips back, not we
    rig.publish(f"{GEN2}/events/rpc", {"src": GEN2, "dst": "x", "method": "NotifyStatus",
                "params": {"ts": 2.0, "switch:0": {"id": 0, "output": False}}})  # fmt: skip
    assert rig.relays()[-1] == ("auto", False)
    assert rig.nvram[1]["pending"] is None
