"""The MQTT seam: a small transport Protocol and an in-memory broker fake (the real
connection: links/leanmqtt.py)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Protocol

from switchgear.errors import DeviceOffline
from switchgear.links.broker import broker
from switchgear.links.mqttwire import BrokerRefused

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
StateHandler = Callable[[bool], None]  # connected (True) or lost (False)


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
    if isinstance(err, ssl.SSLCertVerificationError):
        why = err.verify_message or err
        return f"its TLS certificate is not trusted ({why}): see SWITCHGEAR_MQTT_CA"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err})"
    return None


class MqttTransport(Protocol):
    """A broker connection that keeps itself up: subscriptions survive reconnects."""

    client_id: str

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None: ...
    @property
    def connected(self) -> bool: ...
    async def subscribe(self, topic_filter: str) -> None: ...
    async def unsubscribe(self, topic_filter: str) -> None:
        """Drop a plain subscription; nothing published after this comes by it."""
        ...

    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        """Also take `topic_filter` as one of the group's members (MQTT 5 `$share/`): each
        message goes to one member, to `on_message`, beside the plain subscription's copy."""
        ...

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """QoS 1; raises DeviceOffline when the broker is not reachable."""
        ...

    async def close(self) -> None: ...


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

    async def unsubscribe(self, topic_filter: str) -> None:
        self.filters.discard(topic_filter)

    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        self.shared[(group, topic_filter)] = on_message

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if not self.up:
            raise DeviceOffline("the server is not connected to the MQTT broker")
        self.broker.publish(topic, payload, retain)

    async def close(self) -> None:
        self.up = False
