"""The MQTT seam: a small transport Protocol, the aiomqtt client, and an in-memory broker fake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from switchgear.errors import DeviceOffline
from switchgear.links.broker import Broker, broker
from switchgear.links.mqttwire import BrokerRefused

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
StateHandler = Callable[[bool], None]  # connected (True) or lost (False)

KEEPALIVE_S = 30
MAX_BACKOFF_S = 10.0
# QoS 1 publishes on the wire before their PUBACKs (paho's default, 20, made a server with
# thousands of devices wait a broker round trip per 20 requests: docs/performance.md)
MAX_INFLIGHT = 1000


def no_delay(paho: Any) -> None:
    """Turn Nagle off on paho's socket (paho leaves it on: a small publish waited for the
    broker's delayed ACK of the one before, up to 40 ms). Corking its write passes
    (TCP_CORK around paho's loop_write) was measured faster but broke reconnecting after a
    broker restart under uvloop, so it is not done."""
    sock = paho.socket()
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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
    """`mqtt[s]://[user[:password]@]host:port` as (host, port); see links/broker.py."""
    b = broker(url)
    return b.host, b.port


# CONNACK codes of a refused login (MQTT 3.1.1: 4, 5; MQTT 5: 134, 135)
_LOGIN_REFUSED = {4, 5, 134, 135}


def refused(err: BaseException) -> str | None:
    """What an operator must fix when the broker refused us (login, TLS), else None."""
    if isinstance(err, BrokerRefused) and err.code in _LOGIN_REFUSED:
        return f"bad user name or password, or not authorised ({err})"
    if isinstance(err, aiomqtt.MqttCodeError):
        rc = getattr(err.rc, "value", err.rc)
        if rc in _LOGIN_REFUSED:
            return f"bad user name or password, or not authorised ({err})"
    cause = err.__context__ if isinstance(err, aiomqtt.MqttError) else err  # aiomqtt wraps it
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = cause.verify_message or cause
        return f"its TLS certificate is not trusted ({why}): see SWITCHGEAR_MQTT_CA"
    if isinstance(cause, ssl.SSLError):
        return f"TLS failed ({cause.reason or cause})"
    return None


class MqttTransport(Protocol):
    """A broker connection that keeps itself up: subscriptions survive reconnects."""

    client_id: str

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None: ...
    @property
    def connected(self) -> bool: ...
    async def subscribe(self, topic_filter: str) -> None: ...
    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        """Also take `topic_filter` as one of the group's members (MQTT 5 `$share/`): each
        message goes to one member, to `on_message`, beside the plain subscription's copy."""
        ...

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """QoS 1; raises DeviceOffline when the broker is not reachable."""
        ...

    async def close(self) -> None: ...


class AiomqttTransport:
    """The real client: connects, subscribes, dispatches, and reconnects by itself."""

    def __init__(
        self,
        host: str | Broker,
        port: int | None = None,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes] | None = None,
        birth: tuple[str, bytes] | None = None,
        v5: bool = False,
    ) -> None:
        """`host`: a Broker (address, login, TLS), or a plain host with `port`;
        `will`: a retained last will (topic, payload) the broker publishes when the
        connection dies; `birth`: retained, published after every (re)connect; `v5`: speak
        MQTT 5 (needed by `share`)."""
        self.broker = host if isinstance(host, Broker) else Broker(host, port or 1883)
        self.host, self.port = self.broker.host, self.broker.port
        self._refusal: str | None = None  # the last refusal said at ERROR (once each)
        self._v5 = v5
        # subscription identifier -> ($share/... filter, handler) of the shared copies
        self._shared: dict[int, tuple[str, MessageHandler]] = {}
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
                version = aiomqtt.ProtocolVersion.V5 if self._v5 else aiomqtt.ProtocolVersion.V311
                async with aiomqtt.Client(
                    self.host, self.port, identifier=self.client_id, keepalive=KEEPALIVE_S,
                    will=will, protocol=version, max_inflight_messages=MAX_INFLIGHT,
                    **self.broker.client_options(),
                ) as client:  # fmt: skip
                    no_delay(client._client)  # paho underneath
                    client.pending_calls_threshold = MAX_INFLIGHT  # its warning: a burst
                    # set first: a filter added while these subscribe goes straight to the
                    # broker (one added before is in the set), so none is missed
                    self._client = client
                    for f in sorted(self._filters):
                        await client.subscribe(f, qos=1)
                    for sub_id, (f, _) in sorted(self._shared.items()):
                        await client.subscribe(f, qos=1, properties=_sub_id(sub_id))
                    if self._birth is not None:
                        await client.publish(*self._birth, qos=1, retain=True)
                    backoff, self._refusal = 0.5, None
                    log.info("connected to MQTT broker %s", self.broker)
                    on_state(True)
                    async for m in client.messages:
                        payload = m.payload
                        if not isinstance(payload, bytes):
                            payload = b"" if payload is None else str(payload).encode()
                        handler = on_message
                        if self._shared and m.properties is not None:
                            for sub_id in getattr(m.properties, "SubscriptionIdentifier", ()):
                                handler = self._shared.get(sub_id, (None, handler))[1]
                        try:
                            handler(m.topic.value, payload)
                        except Exception:
                            log.exception("MQTT message on %s not handled", m.topic.value)
            except (aiomqtt.MqttError, OSError) as err:  # TLS failures are OSErrors
                self._said(err)
            if self._client is not None:
                self._client = None
                on_state(False)
            await asyncio.sleep(backoff)  # network back-off: wall time, not the device clock
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _said(self, err: Exception) -> None:
        """A lost or refused connection: a refused login or certificate is an ERROR line,
        said once until it changes (the client keeps trying: the broker may be fixed)."""
        refusal = refused(err)
        if refusal is None:
            log.info("MQTT broker %s: %s", self.broker, err)
        elif refusal != self._refusal:
            self._refusal = refusal
            log.error("MQTT broker %s refused the connection: %s", self.broker, refusal)

    async def subscribe(self, topic_filter: str) -> None:
        self._filters.add(topic_filter)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # the reconnect subscribes it
                await self._client.subscribe(topic_filter, qos=1)

    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        if not self._v5:
            raise RuntimeError("shared subscriptions need an MQTT 5 transport (v5=True)")
        sub_id = len(self._shared) + 1
        shared = f"$share/{group}/{topic_filter}"
        self._shared[sub_id] = (shared, on_message)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # the reconnect subscribes it
                await self._client.subscribe(shared, qos=1, properties=_sub_id(sub_id))

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


def _sub_id(sub_id: int) -> Properties:
    props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
    props.SubscriptionIdentifier = sub_id
    return props


class MemoryBroker:
    """An in-process broker fake: every transport it makes sees what the others publish;
    a shared subscription's messages go round the group's members in turn."""

    def __init__(self) -> None:
        self.transports: list[MemoryTransport] = []
        self.log: list[tuple[str, bytes]] = []  # everything published, in order
        self.turns: dict[tuple[str, str], int] = {}  # (group, filter) -> messages dealt
        self.retained: dict[str, bytes] = {}

    def transport(self, client_id: str = "switchgear-test") -> MemoryTransport:
        t = MemoryTransport(self, client_id)
        self.transports.append(t)
        return t

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.log.append((topic, payload))
        if retain:
            self.retained[topic] = payload
        for t in self.transports:
            t.deliver(topic, payload)
        groups: dict[tuple[str, str], list[MessageHandler]] = {}
        for t in self.transports:
            if t.up:
                for (group, f), handler in t.shared.items():
                    if matches(f, topic):
                        groups.setdefault((group, f), []).append(handler)
        for key, members in groups.items():
            turn = self.turns.get(key, 0)
            self.turns[key] = turn + 1
            members[turn % len(members)](topic, payload)


class MemoryTransport:
    """One client of a MemoryBroker; delivery is synchronous, in publishing order."""

    def __init__(self, broker: MemoryBroker, client_id: str) -> None:
        self.broker = broker
        self.client_id = client_id
        self.filters: set[str] = set()
        self.shared: dict[tuple[str, str], MessageHandler] = {}  # (group, filter) -> handler
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
        for topic, payload in list(self.broker.retained.items()):
            if self.up and self._on_message and matches(topic_filter, topic):
                self._on_message(topic, payload)

    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        self.shared[(group, topic_filter)] = on_message

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if not self.up:
            raise DeviceOffline("the server is not connected to the MQTT broker")
        self.broker.publish(topic, payload, retain)

    async def close(self) -> None:
        self.up = False
