"""FleetLink in group mode: every worker's shadows and events, each record written once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from switchgear.core.clock import VirtualClock
from switchgear.core.model import (
    ChannelState,
    Device,
    DeviceEvent,
    DeviceState,
    SharedEvent,
    StatusKind,
)
from switchgear.links import fleetlink
from switchgear.links import twinwire as tw
from switchgear.links.fleetlink import FleetLink, presence_topic
from switchgear.links.mqttclient import MemoryBroker
from tests.api.test_mqtt_devices import until

T0 = 1_750_000_000.0
DEVICE = Device(5, 1, "PC-0001", "power-controller-v10", "wh", T0)


async def worker(broker: MemoryBroker, name: str) -> tuple[FleetLink, list[DeviceEvent],
                                                           list[tuple[str, str]]]:  # fmt: skip
    link = FleetLink(VirtualClock(start=T0, speed=0), broker.transport(name), 5.0, group="g")
    heard: list[DeviceEvent] = []
    records: list[tuple[str, str]] = []
    link.attach(heard.append)
    link.recorder = lambda ev, rid: records.append((f"{ev.kind.value}/{ev.reason}", rid))
    await link.start()
    await link.add(DEVICE)
    return link, heard, records


def trip_report() -> bytes:
    """A controller's trip as the fleet sends it: the step's update, trigger and relay."""
    at_step = DeviceState(5, T0, True, (ChannelState(0, True),))
    tripped = DeviceState(5, T0 + 1 / 6, True, (ChannelState(0, False),))
    evs = [
        DeviceEvent(5, T0, StatusKind.UPDATE, "grid", {}, at_step, None, False),
        DeviceEvent(5, T0 + 1 / 6, StatusKind.TRIGGER, "ffr", {"frequency": 59.6}, tripped, 0),
        DeviceEvent(5, T0 + 1 / 6, StatusKind.RELAY, "ffr", {"on": False}, tripped, 0),
    ]
    bodies = [tw.dumps(tw.event_body(e, with_state=k < 2)) for k, e in enumerate(evs)]
    return tw.notify_events(tw.mqtt_id(DEVICE), bodies)


async def test_one_trip_report_reaches_every_worker_and_is_recorded_once() -> None:
    broker = MemoryBroker()
    workers = [await worker(broker, f"w{i}") for i in range(2)]
    for _ in range(3):  # three reports: the shared copies go round the two workers
        broker.publish(tw.events_topic(DEVICE), trip_report())
    for _link, heard, _records in workers:
        assert [(e.kind.value, e.reason, e.state.channels[0].on) for e in heard] == [
            ("update", "grid", True), ("trigger", "ffr", False), ("relay", "ffr", False),
        ] * 3  # fmt: skip
        assert not any(e.record for e in heard)  # the records are the elected worker's
    records = [r for _, _, rs in workers for r in rs]
    assert sorted(kind for kind, _ in records) == ["relay/ffr"] * 3 + ["trigger/ffr"] * 3
    assert [len(rs) for _, _, rs in workers] == [4, 2]  # reports 1 and 3, then 2
    # a live event names its history record by the id the elected worker wrote it under
    for _, heard, _ in workers:
        ids = [e.record_id for e in heard if isinstance(e, SharedEvent) and e.record_id]
        assert sorted(ids) == sorted(rid for _, rid in records)


async def test_a_worker_alone_takes_each_report_once_and_records_it_once() -> None:
    broker = MemoryBroker()
    link, heard, records = await worker(broker, "w0")
    assert broker.retained[presence_topic("g", "w0")] == b"lone"
    (transport,) = broker.transports
    assert tw.events_topic(DEVICE) not in transport.filters  # the shared copy only
    for k in range(600):
        broker.publish(tw.events_topic(DEVICE), trip_report().replace(b"59.6", f"{k}".encode()))
    assert len(heard) == 1800 and len(records) == 1200
    assert len({rid for _, rid in records}) == 1200
    assert not link._parsed  # nothing waits for a second copy


def modes(broker: MemoryBroker) -> dict[str, bytes]:
    return {t.rsplit("/", 1)[1]: m for t, m in broker.retained.items() if "/recorders/" in t}


async def test_workers_coming_and_going_never_record_a_report_twice_or_miss_one() -> None:
    """A lone worker takes its plain copies back before a newcomer takes shared ones (its
    shadows miss nothing dealt to the other); left alone again, it goes lone."""
    broker = MemoryBroker()
    published = 0

    def report() -> None:
        nonlocal published
        published += 1
        broker.publish(tw.events_topic(DEVICE),
                       trip_report().replace(b"59.6", f"{published}".encode()))  # fmt: skip

    first, heard0, records0 = await worker(broker, "w0")
    report()
    joining = asyncio.create_task(worker(broker, "w1"))
    for _ in range(3):  # while the second worker joins
        await asyncio.sleep(0)
        report()
    second, heard1, records1 = await joining
    assert modes(broker) == {"w0": b"grouped", "w1": b"grouped"}
    for _ in range(4):
        report()
    # every worker heard every report from the moment it joined; the first, all of them
    assert len(heard0) == 3 * published
    assert len(heard1) == 3 * 4  # (the reports while it joined: before it subscribed)
    assert records1  # the shared copies go round the two
    await second.close()
    for _ in range(5):
        await asyncio.sleep(0)
    assert modes(broker) == {"w0": b"lone", "w1": b""}
    assert tw.events_topic(DEVICE) not in broker.transports[0].filters
    report()
    assert len(heard0) == 3 * published
    ids = [rid for _, rid in records0 + records1]
    assert len(ids) == len(set(ids)) == 2 * published  # each report's two records, once
    await first.close()


@pytest.mark.parametrize("group", [None, "g"], ids=["one-worker", "group"])
async def test_a_status_answer_older_than_a_report_heard_meanwhile_does_not_undo_it(
    group: str | None,
) -> None:
    """The server asks a device that came online for its status; the device goes offline
    and reports it just after answering: the answer (online, the same virtual instant)
    resumes the asker after the report was applied, and must not put it back online."""
    broker = MemoryBroker()
    link = FleetLink(VirtualClock(start=T0, speed=0), broker.transport("w"), 5.0, group=group)
    heard: list[DeviceEvent] = []
    link.attach(heard.append)
    link.shadow = lambda i: heard[-1].state if heard else DeviceState(i, 0.0, False)
    await link.start()
    await link.add(DEVICE)
    asked: list[dict[str, object]] = []
    device = broker.transport("device")
    device.start(lambda _t, p: asked.append(tw.loads(p) or {}), lambda _up: None)
    await device.subscribe(tw.rpc_topic(DEVICE))
    broker.publish(tw.online_topic(DEVICE), b"true")  # the link asks for the status
    await asyncio.sleep(0)
    (ask,) = [a for a in asked if str(a.get("method")).endswith("GetStatus")]
    on = DeviceState(5, T0, True, (ChannelState(0, False),))
    off = DeviceState(5, T0, False, (ChannelState(0, False),))
    went = DeviceEvent(5, T0, StatusKind.CONNECTION, "offline", {"online": False}, off)
    report = tw.notify_events(tw.mqtt_id(DEVICE), [tw.dumps(tw.event_body(went))])
    broker.publish(tw.events_topic(DEVICE), report)  # in the device's order: after its
    answer = tw.answer(ask["id"], tw.mqtt_id(DEVICE), str(ask["src"]), on.to_json())
    broker.publish(f"{ask['src']}/rpc", answer)  # answer, heard in one read with it
    for _ in range(5):
        await asyncio.sleep(0)
    assert heard[-1].state.online is False, [(e.kind.value, e.state.online) for e in heard]
    await link.close()


async def test_a_dead_workers_stale_lone_record_delays_one_start_says_why_and_is_cleared(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fleetlink, "JOIN_WAIT_S", 0.05)  # the wait for a lone worker
    monkeypatch.setattr(fleetlink, "LONE_STALE_S", 0.1)  # its broker lease's expiry
    broker = MemoryBroker()
    stale = presence_topic("g", "dead")
    broker.retained[stale] = b"lone"  # its will never went: it died while the broker was away
    caplog.set_level(logging.INFO, logger=fleetlink.__name__)
    first, _, _ = await worker(broker, "w0")
    assert first.mode == "grouped"
    assert "waiting" in caplog.text and "dead" in caplog.text  # says whom it waits for, and why
    await until(lambda: broker.retained.get(stale) == b"")  # no live worker leaves it unanswered
    monkeypatch.setattr(fleetlink, "JOIN_WAIT_S", 3600.0)
    second, _, _ = await asyncio.wait_for(worker(broker, "w1"), 5.0)  # not held by it again
    assert second.mode == "grouped" and not second._waited
    await first.close()
    await second.close()
