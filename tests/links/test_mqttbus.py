"""The bus and peers of API workers, on the in-memory broker fake."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from switchgear.core.model import Json
from switchgear.links import mqttbus
from switchgear.links.mqttbus import BrokerPeers, MqttBus
from switchgear.links.mqttclient import MemoryBroker, MemoryTransport
from tests.api.test_mqtt_devices import until

ROOT = "switchgear/test/"


class Node:
    """One worker's bus and peers on one transport."""

    def __init__(
        self, broker: MemoryBroker, name: str, outward: set[int], timeout_s: float = 0.5
    ) -> None:
        self.transport: MemoryTransport = broker.transport(name)
        self.bus = MqttBus(self.transport, ROOT, outward.__contains__)
        self.peers = BrokerPeers(self.transport, ROOT, timeout_s=timeout_s)
        self.applied: list[Json] = []

        async def apply(body: Json) -> None:
            await asyncio.sleep(0.01)  # applying takes a while: the teller waits for it
            self.applied.append(body)

        self.peers.on("thing", apply)

    async def start(self, broker: MemoryBroker) -> None:
        def on_message(topic: str, payload: bytes) -> None:
            if not self.bus.on_message(topic, payload):
                self.peers.on_message(topic, payload)

        self.transport.start(on_message, lambda up: None)
        await self.bus.start()
        await self.peers.start()
        broker.publish(f"{ROOT}peers/present/{self.transport.client_id}", b"1", retain=True)


async def two() -> tuple[MemoryBroker, Node, Node]:
    broker = MemoryBroker()
    a, b = Node(broker, "a", {7}), Node(broker, "b", set())
    await a.start(broker)
    await b.start(broker)
    return broker, a, b


async def test_a_change_told_is_applied_by_the_other_worker_before_tell_returns() -> None:
    _, a, b = await two()
    assert a.peers.present == {"b"} and b.peers.present == {"a"}
    await a.peers.tell("thing", {"n": 1})
    assert b.applied == [{"n": 1}] and a.applied == []  # not by the teller itself


async def test_a_worker_that_left_is_not_waited_for() -> None:
    broker, a, b = await two()
    broker.publish(f"{ROOT}peers/present/b", b"", retain=True)  # its last will
    b.transport.set_up(False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await a.peers.tell("thing", {"n": 2})
    assert loop.time() - started < 0.4 and b.applied == []


async def test_a_silent_worker_delays_a_change_only_up_to_the_timeout() -> None:
    _, a, b = await two()
    b.transport.set_up(False)  # gone without its last will (yet)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await a.peers.tell("thing", {"n": 3})
    assert 0.4 <= loop.time() - started < 2.0


async def test_events_of_a_device_one_worker_alone_hears_reach_the_other_once() -> None:
    _, a, b = await two()
    got_a: list[tuple[str, Any]] = []
    got_b: list[tuple[str, Any]] = []

    async def read(bus: MqttBus, into: list[tuple[str, Any]]) -> None:
        async for item in bus.subscribe("device/"):
            into.append(item)

    tasks = [asyncio.ensure_future(read(a.bus, got_a)), asyncio.ensure_future(read(b.bus, got_b))]
    await asyncio.sleep(0)
    assert a.bus.wanted("device/1/7")  # polled here: goes out even with nobody listening
    a.bus.publish("device/1/7", {"device_id": 7, "state": {}, "n": 1})
    a.bus.publish("device/1/8", {"device_id": 8, "state": {}, "n": 2})  # heard everywhere
    a.bus.publish("device/1/7", {"device_id": 7, "state": {}, "n": 3})
    for _ in range(10):
        await asyncio.sleep(0)
    assert [m["n"] for _, m in got_a] == [1, 2, 3]  # its own, once (no echo)
    assert [m["n"] for _, m in got_b] == [1, 3]  # only the outward ones, in order
    for t in tasks:
        t.cancel()


async def test_a_dead_workers_stale_presence_delays_changes_only_until_its_lease(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mqttbus, "PRESENCE_STALE_S", 0.3, raising=False)  # the broker's lease
    broker = MemoryBroker()
    stale = f"{ROOT}peers/present/dead"
    broker.retained[stale] = b"1"  # its will never went: it died while the broker was away
    a = Node(broker, "a", set(), timeout_s=0.1)
    await a.start(broker)
    assert a.peers.present == {"dead"}
    caplog.set_level(logging.WARNING, logger=mqttbus.__name__)
    await a.peers.tell("thing", {"n": 1})  # waits its timeout for the dead worker
    await until(lambda: broker.retained.get(stale) == b"")  # no live worker's: cleared
    assert "dead" in caplog.text and "cleared" in caplog.text
    caplog.clear()
    for n in range(2, 5):  # no later change waits for it
        await a.peers.tell("thing", {"n": n})
        assert a.peers.present == set()
    assert "did not confirm" not in caplog.text


async def test_a_live_worker_silent_past_the_lease_says_it_is_present_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mqttbus, "PRESENCE_STALE_S", 0.3, raising=False)
    broker = MemoryBroker()
    a, b = Node(broker, "a", set(), timeout_s=0.1), Node(broker, "b", set())
    await a.start(broker)
    await b.start(broker)
    gate = asyncio.Event()

    async def stuck(body: Json) -> None:
        await gate.wait()  # applying hangs well past the lease; the worker stays connected
        b.applied.append(body)

    b.peers.on("thing", stuck)
    await a.peers.tell("thing", {"n": 1})  # unconfirmed within the timeout
    assert b.applied == []
    await until(lambda: broker.log[-1] == (f"{ROOT}peers/present/b", b"1"))  # cleared, said again
    assert a.peers.present == {"b"} and broker.retained[f"{ROOT}peers/present/b"] == b"1"
    gate.set()
    await a.peers.tell("thing", {"n": 2})  # still waited for: it applies both, in order
    assert b.applied == [{"n": 1}, {"n": 2}]
