"""The bus and the peers over an MQTT broker: what every API worker of one deployment sees.

Every worker subscribes to every device on the broker itself (its shadows, and its own
subscribers' events, come from there in each device's order), so device events travel
on the broker only for devices no other worker hears: polled meters. What workers keep
in memory besides (credentials, Push3 channels, the registry) changes by `Peers.tell`,
answered once every other worker has applied the change. Topics, under one deployment's
prefix `switchgear/<deployment>/` (the deployment: a digest of the secret key and the
database's name, which the workers of one deployment share):

    bus/<bus topic>          an event, {"o": origin, "m": message}
    peers/tell/<kind>        a change, {"o": origin, "n": number, "b": body}
    peers/ack/<origin>       {"n": number, "from": worker}: applied
    peers/present/<worker>   retained "1" while the worker is connected (its last will: "")

A worker killed while connected leaves no presence: the broker sends its will at once.
One that died while the broker was away (a broker restart keeps retained messages) or
whose host vanished leaves "1" behind, and each change would wait TELL_TIMEOUT_S for it.
A live worker confirms what it is told, and says it is present after each reconnect and
whenever it sees its record emptied while connected; one that confirmed nothing and said
nothing PRESENCE_STALE_S after a change it left unconfirmed (the broker's keepalive lease
of a silent client) is no live worker, so the teller clears its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from switchgear.core.bus import MemoryBus
from switchgear.core.model import Json
from switchgear.core.ports import PeerHandler
from switchgear.errors import DeviceOffline
from switchgear.links.broker import Broker
from switchgear.links.leanmqtt import KEEPALIVE_S, LeanTransport
from switchgear.links.mqttclient import MqttTransport

log = logging.getLogger(__name__)

TELL_TIMEOUT_S = 2.0  # how long a change waits for a worker that does not confirm it
CONNECT_TIMEOUT_S = 5.0
PRESENCE_STALE_S = KEEPALIVE_S * 1.5  # silent this long after a change: no live worker


def deployment(secret_key: str, database_url: str) -> str:
    """The name every worker of one deployment (one database, one secret key) shares."""
    name = urlsplit(database_url).path  # the database, however its host is spelled
    seed = f"switchgear-deployment/{secret_key}/{name}"
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def _loads(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class MqttBus(MemoryBus):
    """A MemoryBus whose events of devices only this worker hears also reach the others."""

    def __init__(self, transport: MqttTransport, root: str, outward: Callable[[int], bool]) -> None:
        """`outward(device_id)`: whether this worker alone hears the device (polled)."""
        super().__init__()
        self.transport = transport
        self.origin = transport.client_id
        self.root = root + "bus/"
        self._outward = outward
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        # told of each event another worker sent (the engine keeps its shadow from it)
        self.on_remote: Callable[[str, Json], None] | None = None

    def wanted(self, topic: str) -> bool:
        if super().wanted(topic):
            return True
        if not topic.startswith("device/"):
            return False
        return self._outward(int(topic.rpartition("/")[2]))

    def publish(self, topic: str, message: Json) -> None:
        super().publish(topic, message)
        device_id = message.get("device_id") if isinstance(message, dict) else None
        if isinstance(device_id, int) and self._outward(device_id):
            payload = _dumps({"o": self.origin, "m": message})
            self._queue.put_nowait((self.root + topic, payload))

    async def start(self) -> None:
        await self.transport.subscribe(self.root + "#")
        self._pump = asyncio.get_running_loop().create_task(self._send(), name="mqtt-bus")

    async def _send(self) -> None:
        """Publish in order (QoS 1); while the broker is away, events are dropped."""
        while True:
            topic, payload = await self._queue.get()
            try:
                await self.transport.publish(topic, payload)
            except DeviceOffline:
                log.debug("bus event on %s not sent: no broker", topic)

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Take a bus message from the broker (False: not the bus's topic)."""
        if not topic.startswith(self.root):
            return False
        body = _loads(payload)
        if body is None or body.get("o") == self.origin:  # our own: delivered already
            return True
        bus_topic, message = topic[len(self.root) :], body.get("m")
        if self.on_remote is not None:
            self.on_remote(bus_topic, message)
        MemoryBus.publish(self, bus_topic, message)
        return True

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump


class BrokerPeers:
    """Peers over the broker: a change told is applied by every worker present, in order."""

    def __init__(self, transport: MqttTransport, root: str, timeout_s: float = TELL_TIMEOUT_S):
        self.transport = transport
        self.origin = transport.client_id
        self.root = root + "peers/"
        self.timeout_s = timeout_s
        self.present: set[str] = set()  # other workers connected to the broker
        self._handlers: dict[str, PeerHandler] = {}
        self._numbers = itertools.count(1)
        self._waiting: dict[int, tuple[set[str], asyncio.Future[None]]] = {}
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._silent: dict[str, asyncio.Task[None]] = {}  # unconfirmed: cleared when stale
        self._chores: set[asyncio.Task[None]] = set()
        self._leaving = False

    def on(self, kind: str, handler: PeerHandler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        for f in ("tell/#", f"ack/{self.origin}", "present/+"):
            await self.transport.subscribe(self.root + f)
        self._worker = asyncio.get_running_loop().create_task(self._apply(), name="peers")

    async def tell(self, kind: str, body: Json) -> None:
        number = next(self._numbers)
        expected = set(self.present)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if expected:
            self._waiting[number] = (expected, done)
        try:
            frame = _dumps({"o": self.origin, "n": number, "b": body})
            await self.transport.publish(f"{self.root}tell/{kind}", frame)
            if expected:
                async with asyncio.timeout(self.timeout_s):
                    await done
        except TimeoutError:
            late = self._waiting.get(number, (set(), None))[0]
            log.warning("workers %s did not confirm %s within %.1f s", sorted(late), kind,
                        self.timeout_s)  # fmt: skip
            for worker in late:
                self._suspect(worker)
        finally:
            self._waiting.pop(number, None)

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Take a peers message from the broker (False: not the peers' topic)."""
        if not topic.startswith(self.root):
            return False
        rest = topic[len(self.root) :]
        if rest.startswith("present/"):
            worker = rest[len("present/") :]
            if worker == self.origin:
                if not payload and not self._leaving:  # cleared while we are here: say so
                    self._chore(self._announce())
            elif payload:  # not news of life: a dead worker's record comes on resubscribing
                self.present.add(worker)
            else:
                self._gone(worker)
            return True
        body = _loads(payload)
        if body is None:
            return True
        if rest.startswith("tell/") and body.get("o") != self.origin:
            self._heard(str(body.get("o")))
            self._inbox.put_nowait((rest[len("tell/") :], body))
        elif rest.startswith("ack/"):
            self._heard(str(body.get("from")))
            waiting = self._waiting.get(body.get("n"))  # type: ignore[arg-type]
            if waiting is not None:
                waiting[0].discard(str(body.get("from")))
                if not waiting[0] and not waiting[1].done():
                    waiting[1].set_result(None)
        return True

    def _gone(self, worker: str) -> None:
        self._heard(worker)
        self.present.discard(worker)
        for expected, done in self._waiting.values():
            expected.discard(worker)
            if not expected and not done.done():
                done.set_result(None)

    def _suspect(self, worker: str) -> None:
        """A worker left a change unconfirmed: clear its record if it stays silent."""
        if worker in self.present and worker not in self._silent:
            self._silent[worker] = self._chore(self._clear_if_silent(worker))

    def _heard(self, worker: str) -> None:
        """A worker confirmed or told something, or left: it is not (or no longer) suspect."""
        check = self._silent.pop(worker, None)
        if check is not None:
            check.cancel()

    async def _clear_if_silent(self, worker: str) -> None:
        await asyncio.sleep(max(0.0, PRESENCE_STALE_S - self.timeout_s))
        if self._silent.pop(worker, None) is None:
            return
        log.warning("cleared the presence of worker %s: it confirmed no change and said "
                    "nothing for %.0f s (it died while off the broker, or its host is gone)",
                    worker, PRESENCE_STALE_S)  # fmt: skip
        self._gone(worker)
        with contextlib.suppress(DeviceOffline):  # a live one says it is present again
            await self.transport.publish(f"{self.root}present/{worker}", b"", retain=True)

    async def _announce(self) -> None:
        with contextlib.suppress(DeviceOffline):  # else the birth of the reconnect says it
            await self.transport.publish(f"{self.root}present/{self.origin}", b"1", retain=True)

    def _chore(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name="peers-presence")
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return task

    async def _apply(self) -> None:
        """Apply what others tell, one change at a time, and confirm each."""
        while True:
            kind, body = await self._inbox.get()
            handler = self._handlers.get(kind)
            try:
                if handler is not None:
                    await handler(body.get("b"))
            except Exception:
                log.exception("change %s from worker %s not applied", kind, body.get("o"))
            ack = _dumps({"n": body.get("n"), "from": self.origin})
            with contextlib.suppress(DeviceOffline):
                await self.transport.publish(f"{self.root}ack/{body.get('o')}", ack)

    async def close(self) -> None:
        self._leaving = True
        for task in [self._worker, *self._chores]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        here = f"{self.root}present/{self.origin}"
        with contextlib.suppress(DeviceOffline):  # a clean leave: others stop waiting for us
            await self.transport.publish(here, b"", retain=True)


class Cluster:
    """One broker connection carrying a worker's bus and peers."""

    def __init__(self, broker: Broker, name: str, outward: Callable[[int], bool]):
        """`name`: the deployment's (`deployment()`)."""
        root = f"switchgear/{name}/"
        client_id = f"switchgear-{secrets.token_hex(6)}"
        here = f"{root}peers/present/{client_id}"
        self.transport = LeanTransport(broker, None, client_id, will=(here, b""),
                                          birth=(here, b"1"))  # fmt: skip
        self.peers = BrokerPeers(self.transport, root)
        self.bus = MqttBus(self.transport, root, outward)

    async def start(self) -> None:
        """Connect (waiting a while for the broker) so no change told meanwhile is missed."""
        up = asyncio.Event()

        def on_state(connected: bool) -> None:
            if connected:
                up.set()

        self.transport.start(self._on_message, on_state)
        await self.bus.start()
        await self.peers.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await up.wait()
                await asyncio.sleep(0.05)  # the retained presences of the others arrive

    def _on_message(self, topic: str, payload: bytes) -> None:
        if not self.bus.on_message(topic, payload):
            self.peers.on_message(topic, payload)

    async def close(self) -> None:
        await self.peers.close()
        await self.bus.close()
        await self.transport.close()
