"""The MQTT seam: a small transport Protocol, the aiomqtt client, and an in-memory broker fake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import aiomqtt

from switchgear.errors import DeviceOffline, InvalidInput

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
StateHandler = Callable[[bool], None]  # connected (True) or lost (False)

KEEPALIVE_S = 30
MAX_BACKOFF_S = 10.0
# QoS 1 publishes on the wire before their PUBACKs (paho's default, 20, made a server with
# thousands of devices wait a broker round trip per 20 requests: docs/performance.md)
MAX_INFLIGHT = 1000


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (`+` one level, `#` the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def broker_address(url: str) -> tuple[str, int]:
    """`mqtt://host:port` as (host, port); port 1883 by default."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise InvalidInput(f"link {url!r} is not mqtt://host:port", field="link")
    try:
        port = parts.port or 1883
    except ValueError:
        raise InvalidInput(f"link {url!r} has a bad port", field="link") from None
    return parts.hostname, port


class MqttTransport(Protocol):
    """A broker connection that keeps itself up: subscriptions survive reconnects."""

    client_id: str

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None: ...
    @property
    def connected(self) -> bool: ...
    async def subscribe(self, topic_filter: str) -> None: ...
    async def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1; raises DeviceOffline when the broker is not reachable."""
        ...

    async def close(self) -> None: ...


class AiomqttTransport:
    """The real client: connects, subscribes, dispatches, and reconnects by itself."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes] | None = None,
        birth: tuple[str, bytes] | None = None,
    ) -> None:
        """`will`: a retained last will (topic, payload) the broker publishes when the
        connection dies; `birth`: retained, published after every (re)connect."""
        self.host, self.port = host, port
        self.client_id = client_id or f"switchgear-{secrets.token_hex(6)}"
        self._will = will
        self._birth = birth
        self._filters: set[str] = set()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(on_message, on_state), name="mqtt"
        )

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def _run(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        backoff = 0.5
        while True:
            try:
                will = None
                if self._will is not None:
                    will = aiomqtt.Will(self._will[0], self._will[1], qos=1, retain=True)
                async with aiomqtt.Client(
                    self.host, self.port, identifier=self.client_id, keepalive=KEEPALIVE_S,
                    will=will, max_inflight_messages=MAX_INFLIGHT,
                ) as client:  # fmt: skip
                    client.pending_calls_threshold = MAX_INFLIGHT  # its warning: a burst
                    for f in sorted(self._filters):
                        await client.subscribe(f, qos=1)
                    if self._birth is not None:
                        await client.publish(*self._birth, qos=1, retain=True)
                    self._client, backoff = client, 0.5
                    log.info("connected to MQTT broker %s:%s", self.host, self.port)
                    on_state(True)
                    async for m in client.messages:
                        payload = m.payload
                        if not isinstance(payload, bytes):
                            payload = b"" if payload is None else str(payload).encode()
                        try:
                            on_message(m.topic.value, payload)
                        except Exception:
                            log.exception("MQTT message on %s not handled", m.topic.value)
            except aiomqtt.MqttError as err:
                log.info("MQTT broker %s:%s: %s", self.host, self.port, err)
            if self._client is not None:
                self._client = None
                on_state(False)
            await asyncio.sleep(backoff)  # network back-off: wall time, not the device clock
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def subscribe(self, topic_filter: str) -> None:
        self._filters.add(topic_filter)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # the reconnect subscribes it
                await self._client.subscribe(topic_filter, qos=1)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        client = self._client
        if client is None:
            raise DeviceOffline("the server is not connected to the MQTT broker")
        try:
            await client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as err:
            raise DeviceOffline("the MQTT broker did not take the message") from err

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class MemoryBroker:
    """An in-process broker fake: every transport it makes sees what the others publish."""

    def __init__(self) -> None:
        self.transports: list[MemoryTransport] = []
        self.log: list[tuple[str, bytes]] = []  # everything published, in order

    def transport(self, client_id: str = "switchgear-test") -> MemoryTransport:
        t = MemoryTransport(self, client_id)
        self.transports.append(t)
        return t

    def publish(self, topic: str, payload: bytes) -> None:
        self.log.append((topic, payload))
        for t in self.transports:
            t.deliver(topic, payload)


class MemoryTransport:
    """One client of a MemoryBroker; delivery is synchronous, in publishing order."""

    def __init__(self, broker: MemoryBroker, client_id: str) -> None:
        self.broker = broker
        self.client_id = client_id
        self.filters: set[str] = set()
        self.up = False
        self._on_message: MessageHandler | None = None
        self._on_state: StateHandler | None = None

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self._on_message, self._on_state = on_message, on_state
        self.set_up(True)

    def set_up(self, up: bool) -> None:
        """The connection comes up or drops (a broker restart, in tests)."""
        self.up = up
        if self._on_state is not None:
            self._on_state(up)

    @property
    def connected(self) -> bool:
        return self.up

    def deliver(self, topic: str, payload: bytes) -> None:
        if self.up and self._on_message and any(matches(f, topic) for f in self.filters):
            self._on_message(topic, payload)

    async def subscribe(self, topic_filter: str) -> None:
        self.filters.add(topic_filter)

    async def publish(self, topic: str, payload: bytes) -> None:
        if not self.up:
            raise DeviceOffline("the server is not connected to the MQTT broker")
        self.broker.publish(topic, payload)

    async def close(self) -> None:
        self.up = False
