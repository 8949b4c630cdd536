"""Two API workers and a real Shelly device (a fake Gen1 or Gen2 over the machine's
Mosquitto): each history record is written once and each server-side timer fires once.

Both workers hear every message of the device; the device's fake counts the commands it
is sent, so a timer that fired on both workers would show as two commands.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Json
from switchgear.links.shellygroup import TIMER_CLAIM
from switchgear.storage import SqlStore
from tests.api.test_mqtt_devices import Gen1, Gen2, until
from tests.api.test_workers import Worker, history, url, worker  # noqa: F401 (a fixture)
from tests.storage.conftest import pg_database  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

Plug = Gen1 | Gen2
Gen = type[Gen1] | type[Gen2]


@pytest.fixture(params=[Gen1, Gen2], ids=["gen1", "gen2"])
def gen(request: pytest.FixtureRequest) -> Gen:
    """Each test runs with a fake of either generation."""
    return request.param  # type: ignore[no-any-return]


class ClaimSpy(SqlStore):
    """A worker's store (the real one) noting the claims the worker asks: each one's key
    and whether the worker got it, and how many are being asked now."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.asking = 0
        self.asked: list[tuple[str, bool]] = []

    async def claim(self, key: str, value: Json) -> Json:
        self.asking += 1
        try:
            got = await super().claim(key, value)
        finally:
            self.asking -= 1
        self.asked.append((key, got == value))
        return got


@asynccontextmanager
async def spied(name: str, url: str, secret: str) -> AsyncIterator[Worker]:  # noqa: F811
    async with worker(name, url, secret, ClaimSpy(url)) as w:
        yield w


@dataclass
class Pair:
    a: Worker
    b: Worker
    token: str


@asynccontextmanager
async def pair(url: str) -> AsyncIterator[Pair]:  # noqa: F811
    secret = f"shelly-workers-{secrets.token_hex(16)}"
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(spied("A", url, secret))
        b = await stack.enter_async_context(spied("B", url, secret))
        yield await joined(a, b)


async def joined(a: Worker, b: Worker) -> Pair:
    """The pair once each worker sees the other and the broker, with an account's token."""
    for w in (a, b):
        await until(lambda w=w: len(w.rt.cluster.peers.present) == 1)  # type: ignore[misc, union-attr]
        await until(lambda w=w: w.rt.mqtt is not None and w.rt.mqtt.transport.connected)  # type: ignore[misc]
    account = await a.rt.auth.create_account("s@example.com", "S", "correct horse S")
    _, token = await a.rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
    return Pair(a, b, token)


@asynccontextmanager
async def adopted(url: str, gen: Gen) -> AsyncIterator[tuple[Pair, Plug, int]]:  # noqa: F811
    """Two workers and a fake device of generation `gen`, adopted and online on both."""
    async with pair(url) as p, gen() as plug:
        protocol = "shelly-gen1" if gen is Gen1 else "shelly-gen2"
        yield p, plug, await adopt(p, protocol, plug.mqtt_id)


async def adopt(p: Pair, protocol: str, mqtt_id: str) -> int:
    r = await p.a.post("/api/v1/devices", p.token, {"protocol": protocol, "mqtt_id": mqtt_id,
                                                     "name": "kettle"})  # fmt: skip
    assert r.status_code == 201, r.text
    dev = int(r.json()["id"])
    for w in (p.a, p.b):
        await until(lambda w=w: w.rt.engine.shadow(dev).online)  # type: ignore[misc]
    return dev


async def switch(w: Worker, token: str, dev: int, **body: Any) -> dict[str, Any]:
    r = await w.post(f"/api/v1/devices/{dev}/channels/0/switch", token, body)
    assert r.status_code == 200 and r.json()["state"] == "done", r.text
    return dict(r.json())


async def settled_history(p: Pair, plug: Plug, dev: int) -> list[dict[str, Any]]:
    """The device's history once both workers have taken every report the device sent.

    The device sends a marker after its last report (a new energy counter, which records
    nothing) on the same MQTT session; the broker keeps a session's messages in order to
    each subscriber, so a worker that took the marker took every report before it, and has
    journalled the records it writes of them. (The energy the server keeps never goes
    back: a later report of the old counter reads as a reboot, counted on from the marker.)"""
    marker = 2024.5  # Wh, a counter no report of the tests says
    if isinstance(plug, Gen1):
        await plug.say("relay/0/energy", str(round(marker * 60)))  # watt-minutes
    else:
        status = {**plug.status(), "aenergy": {"total": marker}}
        await plug.say("events/rpc", {"method": "NotifyStatus", "params": {"switch:0": status}})
    for w in (p.a, p.b):
        await until(lambda w=w: w.rt.engine.shadow(dev).meters[0].energy_wh >= marker)  # type: ignore[misc]
        await w.rt.journal.flush()
    return await history(p.b, p.token, dev)


async def fired_once(workers: Sequence[Worker], dev: int) -> None:
    """Wait until no worker can fire the device's timers any more, then check each timer
    run was claimed by one worker alone.

    A worker fires a timer only if the store's claim of it answers "yours" while the worker
    still holds it; once its shadow shows no timer and it is asking nothing of the store,
    every claim it will ever ask of this run is asked (ClaimSpy noted the answers)."""
    for w in workers:
        spy = w.rt.store
        assert isinstance(spy, ClaimSpy)
        await until(lambda w=w, spy=spy: spy.asking == 0  # type: ignore[misc]
                    and w.rt.engine.shadow(dev).channels[0].toggle_at is None)  # fmt: skip
    won: dict[str, int] = {}
    for w in workers:
        assert isinstance(w.rt.store, ClaimSpy)
        for key, got in w.rt.store.asked:
            if key.startswith(f"{TIMER_CLAIM}{dev}/"):
                won[key] = won.get(key, 0) + got
    assert won and set(won.values()) == {1}, won


def assert_once(records: list[dict[str, Any]]) -> None:
    ids = [x["id"] for x in records]
    assert len(ids) == len(set(ids)), "\n".join(
        str((x["id"], x["kind"], x["reason"], x["data"], x["ts"])) for x in records
    )
    keys = [(x["ts"], x["kind"], x["reason"], json.dumps(x["data"])) for x in records]
    assert len(keys) == len(set(keys)), records


def relays(records: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(x["reason"], x["data"]["on"]) for x in records if x["kind"] == "relay"]


def commands(plug: Gen1 | Gen2) -> list[str]:
    """The switch commands the device was sent (Gen1 topic payloads, Gen2 Switch.Set)."""
    out = []
    for topic, payload in plug.received:
        if topic.endswith("/relay/0/command"):
            out.append(payload.decode())
        elif topic.endswith("/rpc") and json.loads(payload)["method"] == "Switch.Set":
            out.append("on" if json.loads(payload)["params"]["on"] else "off")
    return out


async def test_switches_on_either_worker_are_each_one_record_read_on_the_other(
    url: str,  # noqa: F811
    gen: Gen,
) -> None:
    async with adopted(url, gen) as (p, plug, dev):
        for i, action in enumerate(("on", "off", "on", "off")):
            await switch((p.a, p.b)[i % 2], p.token, dev, action=action)
        plug.power = "12.25"
        await switch(p.a, p.token, dev, action="off")  # off already: no record
        for on in (True, False):  # switched at the plug itself: the device says so by itself
            plug.on = on
            if isinstance(plug, Gen1):
                await plug.report()
            else:
                await plug.say("events/rpc", {"method": "NotifyStatus",
                                              "params": {"switch:0": plug.status()}})  # fmt: skip
            for w in (p.a, p.b):
                await until(lambda w=w, on=on: w.rt.engine.shadow(dev).channels[0].on is on)  # type: ignore[misc]
        records = await settled_history(p, plug, dev)
        assert_once(records)
        assert relays(records) == [("api", True), ("api", False), ("api", True),
                                   ("api", False), ("device", True), ("device", False)]  # fmt: skip
        assert commands(plug) == ["on", "off", "on", "off", "off"]


async def test_a_delayed_switch_fires_once_across_workers(
    url: str,  # noqa: F811
    gen: Gen,
) -> None:
    async with adopted(url, gen) as (p, plug, dev):
        answer = await switch(p.a, p.token, dev, action="on", delay=1)
        assert answer["state"] == "done"
        await until(lambda: p.b.rt.engine.shadow(dev).channels[0].toggle_at is not None)
        await until(lambda: plug.on)
        for w in (p.a, p.b):
            await until(lambda w=w: w.rt.engine.shadow(dev).channels[0].on)  # type: ignore[misc]
        await fired_once((p.a, p.b), dev)
        records = await settled_history(p, plug, dev)
        assert commands(plug) == ["on"]  # one command on the device's topic
        assert_once(records)
        assert relays(records) == [("timer", True)]


async def test_a_gen1_timed_switch_flips_back_once_across_workers(url: str) -> None:  # noqa: F811
    async with pair(url) as p, Gen1() as plug:
        dev = await adopt(p, "shelly-gen1", plug.mqtt_id)
        await switch(p.b, p.token, dev, action="on", duration=1)
        await until(lambda: p.a.rt.engine.shadow(dev).channels[0].toggle_at is not None)
        await until(lambda: not plug.on and commands(plug) == ["on", "off"])
        for w in (p.a, p.b):
            await until(lambda w=w: not w.rt.engine.shadow(dev).channels[0].on)  # type: ignore[misc]
        await fired_once((p.a, p.b), dev)
        records = await settled_history(p, plug, dev)
        assert commands(plug) == ["on", "off"]
        assert_once(records)
        assert relays(records) == [("api", True), ("auto", False)]


async def test_a_timer_outlives_the_worker_that_set_it(url: str) -> None:  # noqa: F811
    """The worker that set a delayed switch stops at once (its timers go with it, as with
    kill -9): the other fires it, once."""
    secret = f"shelly-workers-{secrets.token_hex(16)}"
    async with Gen1() as plug, spied("B", url, secret) as b:
        async with spied("A", url, secret) as a:
            p = await joined(a, b)
            dev = await adopt(p, "shelly-gen1", plug.mqtt_id)
            await switch(a, p.token, dev, action="on", delay=1.5)
            await until(lambda: b.rt.engine.shadow(dev).channels[0].toggle_at is not None)
        await until(lambda: plug.on, seconds=5)
        await until(lambda: b.rt.engine.shadow(dev).channels[0].on)
        await fired_once((b,), dev)  # (A stopped: it fires nothing any more)
        assert commands(plug) == ["on"]


async def test_a_gen2_brought_online_by_its_state_answer_has_one_online_record(
    url: str,  # noqa: F811
) -> None:
    """A Gen2 says nothing by itself when adopted: each worker's `Switch.GetStatus` answer
    (its alone, on the worker's own reply topic) brings it online there; the history
    holds that as one "connection online" record, not none and not one a worker."""
    async with adopted(url, Gen2) as (p, plug, dev):
        records = await settled_history(p, plug, dev)
        assert_once(records)
        online = [x for x in records if (x["kind"], x["reason"]) == ("connection", "online")]
        assert len(online) == 1, records
