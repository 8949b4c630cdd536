"""The server's broker connection as it was: aiomqtt (paho) behind `MqttTransport`.

Kept for the benchmarks' comparisons only (`bench.fleetscale sessions --impl aiomqtt`: one
aiomqtt client a twin, the fleet's first design); the server uses links/leanmqtt.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from switchgear.errors import DeviceOffline
from switchgear.links.broker import Broker
from switchgear.links.mqttclient import MessageHandler, StateHandler

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
MAX_BACKOFF_S = 10.0
MAX_INFLIGHT = 1000


def client_options(broker: Broker) -> dict[str, Any]:
    """aiomqtt.Client keyword arguments for the broker's login and TLS."""
    options: dict[str, Any] = {"username": broker.username, "password": broker.password}
    context = broker.ssl_context()
    if context is not None:
        options["tls_context"] = context
    return options


def no_delay(paho: Any) -> None:
    """Turn Nagle off on paho's socket (paho leaves it on: a small publish waited for the
    broker's delayed ACK of the one before, up to 40 ms). Corking its write passes
    (TCP_CORK around paho's loop_write) was measured faster but broke reconnecting after a
    broker restart under uvloop, so it is not done."""
    sock = paho.socket()
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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
                    **client_options(self.broker),
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
        """A lost or refused connection, logged."""
        log.info("MQTT broker %s: %s", self.broker, err)

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
