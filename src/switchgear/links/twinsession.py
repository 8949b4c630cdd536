"""Lean MQTT 3.1.1 sessions for the many simulated devices of one fleet process.

Each twin stays a real MQTT client with its own session (client id, retained last will,
retained birth message), but a session is a plain asyncio Protocol on one socket: no task,
no queue and no timer of its own. One `SessionPool` per process dials sessions with a
bounded number of connects at once and sends every session's keep-alive pings from one
ticker. QoS 1 both ways: a publish stays in the session's in-flight table until the
broker's PUBACK and is sent again (DUP) after a reconnect, so a report made while the
broker is away goes out when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from switchgear.links.broker import Broker
from switchgear.links.mqttwire import (
    DISCONNECT,
    PINGREQ,
    connect_packet,
    puback,
    publish_packet,
    split,
    subscribe_packet,
)

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
StateHandler = Callable[[bool], None]

KEEPALIVE_S = 30
CONNECTS_AT_ONCE = 64  # connects in progress at once (TCP handshake to CONNACK)
CONNACK_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 10.0
MAX_IN_FLIGHT = 1000  # publishes kept for a session the broker has not acknowledged
PING_SLICES = 75  # a keep-alive round looks at one slice of the sessions a tick


class TwinSession(asyncio.Protocol):
    """One device's broker session; publishes queue while it is down."""

    __slots__ = (
        "_buf",
        "_in_flight",
        "_on_message",
        "_on_state",
        "_out",
        "_pid",
        "backoff",
        "birth",
        "client_id",
        "closed",
        "connack",
        "filters",
        "last_in",
        "last_out",
        "pool",
        "ready",
        "transport",
        "will",
    )  # fmt: skip

    def __init__(
        self,
        pool: SessionPool,
        client_id: str,
        will: tuple[str, bytes] | None = None,
        birth: tuple[str, bytes] | None = None,
    ) -> None:
        self.pool = pool
        self.client_id = client_id
        self.will, self.birth = will, birth
        self.filters: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.ready = False  # CONNACK accepted: publishes go out now
        self.closed = False
        self.last_in = self.last_out = 0.0
        self.backoff = 0.5
        self.connack: asyncio.Future[bool] | None = None
        self._buf = b""
        self._out: bytes | None = None  # written this loop pass, not yet on the socket
        self._pid = 0
        self._in_flight: dict[int, tuple[str, bytes, bool]] = {}
        self._on_message: MessageHandler = lambda _t, _p: None
        self._on_state: StateHandler = lambda _up: None

    # --- the MqttTransport face -------------------------------------------------

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self.listen(on_message, on_state)
        self.pool.dial(self)

    def listen(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        """Where messages and connection changes go (`start` sets them and dials)."""
        self._on_message, self._on_state = on_message, on_state

    @property
    def connected(self) -> bool:
        return self.ready

    async def subscribe(self, topic_filter: str) -> None:
        if topic_filter in self.filters:
            return
        self.filters.append(topic_filter)
        if self.ready:
            self._write(subscribe_packet(self._next_pid(), [topic_filter]))

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.put(topic, payload, retain)

    def put(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 now, or when the session is (back) up."""
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            dropped = next(iter(self._in_flight))
            del self._in_flight[dropped]
            log.warning("%s: in-flight publishes full, the oldest dropped", self.client_id)
        pid = self._next_pid()
        self._in_flight[pid] = (topic, payload, retain)
        if self.ready:
            self._write(publish_packet(topic, payload, pid, retain, False))

    async def close(self) -> None:
        """Leave cleanly (DISCONNECT: the broker does not publish the last will)."""
        self.closed = True
        self.pool.sessions.discard(self)
        t, self.transport = self.transport, None
        self.ready = False
        if t is not None:
            out, self._out = self._out or b"", None
            with contextlib.suppress(RuntimeError):
                t.write(out + DISCONNECT)
            t.close()

    def itself(self) -> TwinSession:
        """The protocol factory for `create_connection`: the session is its own protocol."""
        return self

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        if self.closed:  # closed while it was dialling
            transport.close()
            return
        self.transport = transport
        self.last_in = self.pool.now()
        broker = self.pool.broker
        self._write(connect_packet(self.client_id, self.pool.keepalive_s, self.will,
                                   broker.username, broker.password))  # fmt: skip

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport, self._buf, self._out = None, b"", None
        was = self.ready
        self.ready = False
        if self.connack is not None and not self.connack.done():
            self.connack.set_result(False)
        if was:
            self._on_state(False)
        else:  # refused or cut before CONNACK: back off further
            self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
        if not self.closed:
            self.pool.dial(self, random.uniform(0.1, self.backoff))

    def data_received(self, data: bytes) -> None:
        self.last_in = self.pool.now()
        packets, self._buf = split(self._buf + data if self._buf else data)
        for first, body in packets:
            self._packet(first, body)

    # --- packets ------------------------------------------------------------------

    def _packet(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == 0x30:  # PUBLISH
            n = struct.unpack_from("!H", body)[0]
            topic = body[2 : 2 + n].decode(errors="replace")
            pos = 2 + n
            if first & 0x06:  # QoS 1 (we subscribe at 1; the broker never sends 2)
                self._write(puback(body[pos : pos + 2]))
                pos += 2
            try:
                self._on_message(topic, body[pos:])
            except Exception:
                log.exception("%s: MQTT message on %s not handled", self.client_id, topic)
        elif kind == 0x40:  # PUBACK
            self._in_flight.pop(struct.unpack_from("!H", body)[0], None)
        elif kind == 0x20:  # CONNACK
            self._connected(body[1] if len(body) > 1 else 255)
        elif kind == 0x90 and 0x80 in body[2:]:  # SUBACK with a refused filter
            log.warning("%s: the broker refused a subscription", self.client_id)

    def _connected(self, code: int) -> None:
        if code != 0:
            log.warning("%s: the broker refused the connection (code %s)", self.client_id, code)
            if self.transport is not None:
                self.transport.close()
            return
        self.ready, self.backoff = True, 0.5
        if self.filters:
            self._write(subscribe_packet(self._next_pid(), self.filters))
        pending = list(self._in_flight.items())
        if self.birth is not None:  # after the subscriptions: whoever hears it can ask
            pending = [p for p in pending if p[1][0] != self.birth[0]]
            self._in_flight = dict(pending)
            self.put(self.birth[0], self.birth[1], True)
        for pid, (topic, payload, retain) in pending:  # reports made while it was down
            self._write(publish_packet(topic, payload, pid, retain, True))
        if self.connack is not None and not self.connack.done():
            self.connack.set_result(True)
        self._on_state(True)

    def _write(self, data: bytes) -> None:
        """Queue a packet: a session's packets of one loop pass leave in one socket write
        (a command's report and answer: one send(), not two)."""
        if self.transport is None:
            return
        if self._out is None:
            self._out = data
            self.pool.wrote(self)
        else:
            self._out += data
        self.last_out = self.pool.now()

    def flush(self) -> None:
        """Write what was queued (the pool's end of the loop pass)."""
        out, self._out = self._out, None
        if out is not None and self.transport is not None:
            self.transport.write(out)

    def _next_pid(self) -> int:
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._in_flight:
                return self._pid


class SessionPool:
    """The sessions of one process: bounded dialling and one keep-alive ticker."""

    def __init__(
        self,
        broker: Broker | str,
        port: int | None = None,
        keepalive_s: int = KEEPALIVE_S,
        connects_at_once: int = CONNECTS_AT_ONCE,
    ) -> None:
        """`broker`: where to connect, with its login and TLS (one TLS context for all),
        or a plain host with `port`."""
        if not isinstance(broker, Broker):
            broker = Broker(broker, port or 1883)
        self.broker = broker
        self.host, self.port = broker.host, broker.port
        self._tls = broker.ssl_context()
        self.keepalive_s = keepalive_s
        self.connects_at_once = connects_at_once
        self.sessions: set[TwinSession] = set()
        self._dirty: list[TwinSession] = []  # sessions with packets queued this loop pass
        self._queue: asyncio.Queue[TwinSession] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return time.monotonic()

    def session(
        self,
        client_id: str,
        will: tuple[str, bytes] | None = None,
        birth: tuple[str, bytes] | None = None,
    ) -> TwinSession:
        s = TwinSession(self, client_id, will, birth)
        self.sessions.add(s)
        return s

    def wrote(self, s: TwinSession) -> None:
        """`s` queued packets: they go at the end of this loop pass (at once before the
        pool has started, as in tests that drive a session by hand)."""
        if self._loop is None:
            s.flush()
            return
        if not self._dirty:
            self._loop.call_soon(self._flush)
        self._dirty.append(s)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for s in dirty:
            s.flush()

    @property
    def connected(self) -> int:
        return sum(1 for s in self.sessions if s.ready)

    def dial(self, s: TwinSession, delay: float = 0.0) -> None:
        """Connect the session now (or after `delay` s), behind the bounded dialers."""
        if self._queue is None:
            self._start()
        assert self._queue is not None and self._loop is not None
        if delay > 0:
            self._loop.call_later(delay, self._queue.put_nowait, s)
        else:
            self._queue.put_nowait(s)

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        for i in range(self.connects_at_once):
            self._tasks.append(self._loop.create_task(self._dialer(), name=f"mqtt-dial-{i}"))
        self._tasks.append(self._loop.create_task(self._ticker(), name="mqtt-keepalive"))

    async def _dialer(self) -> None:
        assert self._queue is not None and self._loop is not None
        while True:
            s = await self._queue.get()
            if s.closed or s.transport is not None:
                continue
            s.connack = self._loop.create_future()
            made = ok = False
            try:
                async with asyncio.timeout(CONNACK_TIMEOUT_S):
                    await self._loop.create_connection(s.itself, self.host, self.port,
                                                       ssl=self._tls)  # fmt: skip
                    made = True
                    ok = await s.connack
            except (OSError, TimeoutError) as err:
                log.debug("%s: connect failed: %s", s.client_id, err)
            s.connack = None
            if ok or s.closed:
                continue
            if made:  # connected but no CONNACK: connection_lost dials again
                if s.transport is not None:
                    s.transport.abort()
            else:
                s.backoff = min(s.backoff * 2, MAX_BACKOFF_S)
                self.dial(s, random.uniform(s.backoff / 2, s.backoff))

    async def _ticker(self) -> None:
        """Every quarter keep-alive, look at each session once, a slice a tick: sessions that
        came up together go idle together, and pinging them all in one loop pass (and
        reading every PINGRESP the next) stalled the fleet's commands for 100-200 ms."""
        step = self.keepalive_s / 4 / PING_SLICES
        while True:
            for part in self.round():
                await asyncio.sleep(step)
                self.tick(part, self.now())

    def round(self) -> Iterator[list[TwinSession]]:
        """The sessions of one keep-alive round, in PING_SLICES slices."""
        ring = list(self.sessions)
        for k in range(PING_SLICES):
            yield ring[k::PING_SLICES]

    def tick(self, sessions: list[TwinSession], now: float) -> int:
        """Ping each of `sessions` idle for 3/4 of the keep-alive; drop one the broker left.
        Returns how many were pinged."""
        pinged = 0
        for s in sessions:
            if not s.ready or s.transport is None:
                continue
            if now - s.last_in > self.keepalive_s * 1.5:
                s.transport.abort()
            elif now - s.last_out >= self.keepalive_s * 0.75:
                s._write(PINGREQ)
                pinged += 1
        return pinged

    async def close(self) -> None:
        """Disconnect every session cleanly and stop dialling."""
        for s in list(self.sessions):
            await s.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queue = None
