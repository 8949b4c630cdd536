"""The server's broker connection: a lean MQTT 3.1.1/5 client on one asyncio Protocol.

It replaced aiomqtt/paho on the server's side (docs/performance.md, "The command round
trip through a lean client"): paho built an MQTT 5 properties object and a lock per
message and sent every packet with its own send(). Here every packet written during one
pass of the event loop goes out in one socket write; QoS 1 both ways, up to the broker's
receive maximum in flight (the rest wait their turn), unacknowledged publishes sent again
(DUP) after a reconnect, keep-alive pings, reconnect with backoff, the subscriptions and
MQTT 5 shared subscriptions (`$share/group/filter`, told apart by subscription
identifiers) made again on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from switchgear.errors import DeviceOffline
from switchgear.links import mqttwire as mw
from switchgear.links.broker import Broker
from switchgear.links.mqttclient import MessageHandler, StateHandler, refused
from switchgear.links.mqttwire import BrokerRefused

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNACK_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 10.0
MAX_IN_FLIGHT = 1000  # our QoS 1 publishes on the wire before their PUBACKs (at most)
CLOSE_DRAIN_S = 2.0  # how long close() waits for the PUBACKs of what is in flight
SUBSCRIBE_BATCH = 500  # filters a SUBSCRIBE carries when a reconnect makes them again
# every this much read, reading pauses for one pass of the event loop: a burst of reports
# does not hold the loop (uvloop reads a socket up to 32 times a pass, 8 MiB: 300 ms of
# reports while a commit's answer and the faces' requests waited), and what a pass reads
# still makes one commit, not many small ones (each commit costs PostgreSQL and us CPU)
BACKLOG_READ = 1024 * 1024


class LeanTransport(asyncio.Protocol):
    """An `MqttTransport` that keeps itself connected; see the module's docstring."""

    def __init__(
        self,
        host: str | Broker,
        port: int | None = None,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes] | None = None,
        birth: tuple[str, bytes] | None = None,
        v5: bool = False,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        """`host`: a Broker (address, login, TLS) or a plain host with `port`; `will`: a
        retained last will; `birth`: retained, published after every (re)connect; `v5`:
        speak MQTT 5 (needed by `share`)."""
        self.broker = host if isinstance(host, Broker) else Broker(host, port or 1883)
        self.client_id = client_id or f"switchgear-{secrets.token_hex(6)}"
        self.keepalive_s = keepalive_s
        self._v5, self._will, self._birth = v5, will, birth
        self._filters: dict[str, None] = {}  # in subscription order
        self._shared: dict[int, tuple[str, MessageHandler]] = {}  # sub id -> filter, handler
        self._on_message: MessageHandler = lambda _t, _p: None
        self._on_state: StateHandler = lambda _up: None
        self._task: asyncio.Task[None] | None = None
        self._refusal: str | None = None
        # the connection
        self._transport: asyncio.Transport | None = None
        self._ready = False
        self._buf = b""
        self._read_in_pass = 0  # bytes read since reading last paused
        self._out: list[bytes] = []
        self._flush_due = False
        self._connack: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self.last_in = self.last_out = 0.0
        # QoS 1 state: pid -> publish on the wire; publishes waiting for a place; SUBACKs
        self._pid = 0
        self._window = MAX_IN_FLIGHT
        self._in_flight: dict[int, tuple[str, bytes, bool]] = {}
        self._waiting: deque[tuple[str, bytes, bool]] = deque()
        self._subacks: dict[int, asyncio.Future[None]] = {}
        self._drained: asyncio.Future[None] | None = None  # closing: all acknowledged

    # --- MqttTransport --------------------------------------------------------------

    def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self._on_message, self._on_state = on_message, on_state
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    @property
    def connected(self) -> bool:
        return self._ready

    @property
    def in_flight(self) -> int:
        """Our publishes not yet acknowledged by the broker (on the wire or waiting)."""
        return len(self._in_flight) + len(self._waiting)

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 (now and after every reconnect); waits for the broker's
        SUBACK while connected, so what is published after this comes here."""
        if topic_filter in self._filters:
            return
        self._filters[topic_filter] = None
        if self._ready:
            await self._subscribe([topic_filter])

    async def unsubscribe(self, topic_filter: str) -> None:
        """Drop a plain subscription (now and for every reconnect); waits for the broker's
        UNSUBACK while connected, so nothing published after this comes here by it."""
        if topic_filter not in self._filters:
            return
        del self._filters[topic_filter]
        if self._ready:
            await self._acked(lambda pid: mw.unsubscribe_packet(pid, [topic_filter], v5=self._v5))

    async def share(self, group: str, topic_filter: str, on_message: MessageHandler) -> None:
        if not self._v5:
            raise RuntimeError("shared subscriptions need an MQTT 5 transport (v5=True)")
        sub_id = len(self._shared) + 1
        shared = f"$share/{group}/{topic_filter}"
        self._shared[sub_id] = (shared, on_message)
        if self._ready:
            await self._subscribe([shared], sub_id)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """QoS 1: on the wire at the end of this loop pass (or when a place in flight is
        free), sent again after a reconnect until the broker acknowledges it."""
        if not self._ready:
            raise DeviceOffline("the server is not connected to the MQTT broker")
        self._put(topic, payload, retain)

    async def close(self) -> None:
        """Leave cleanly: wait (a while) for the broker to acknowledge what is in flight,
        then DISCONNECT (the broker does not publish the last will). Closing with PUBACKs
        still unread would reset the connection and lose what was not yet read."""
        if self._ready and self.in_flight:
            self._drained = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drained), CLOSE_DRAIN_S)
            self._drained = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the connection loop -----------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        try:
            while True:
                try:
                    await self._connect(loop)
                    backoff, self._refusal = 0.5, None
                    log.info("connected to MQTT broker %s", self.broker)
                    self._on_state(True)
                    await self._keep_alive()
                except (OSError, TimeoutError, mw.MalformedPacket) as err:
                    self._said(err)
                self._drop()
                await asyncio.sleep(backoff)  # network back-off: wall time
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            t = self._transport
            if t is not None:
                self._flush()
                with contextlib.suppress(RuntimeError):
                    t.write(mw.DISCONNECT)
                t.close()  # after what is buffered is sent (not abort: that would drop it)
                self._transport = None
            self._drop(tell=False)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Dial, CONNECT, subscribe everything (waiting for the SUBACKs), then publish the
        birth and resend what was in flight."""
        self._connack, self._lost = loop.create_future(), loop.create_future()
        b = self.broker
        async with asyncio.timeout(CONNACK_TIMEOUT_S):
            await loop.create_connection(lambda: self, b.host, b.port, ssl=b.ssl_context())
            await self._connack
        self._ready = True
        subacks = []
        filters = list(self._filters)
        for i in range(0, len(filters), SUBSCRIBE_BATCH):
            subacks.append(self._subscribing(filters[i : i + SUBSCRIBE_BATCH]))
        for sub_id, (f, _) in self._shared.items():
            subacks.append(self._subscribing([f], sub_id))
        for pid, (topic, payload, retain) in self._in_flight.items():  # made before the loss
            self._write(mw.publish_packet(topic, payload, pid, retain, True, v5=self._v5))
        if self._birth is not None:
            self._put(self._birth[0], self._birth[1], True)
        self._fill()
        await asyncio.gather(*subacks)

    async def _keep_alive(self) -> None:
        """Until the connection is lost: ping when idle, drop a connection gone silent."""
        assert self._lost is not None
        every = self.keepalive_s / 4
        while True:
            done, _ = await asyncio.wait((self._lost,), timeout=every)
            if done:
                return self._lost.result()
            now = time.monotonic()
            if now - self.last_in > self.keepalive_s * 1.5 and self._transport is not None:
                self._transport.abort()  # the broker went silent: connection_lost follows
            elif now - self.last_out >= self.keepalive_s * 0.75:
                self._write(mw.PINGREQ)

    def _drop(self, tell: bool = True) -> None:
        """The connection is gone: say so once; SUBACK waiters stop waiting (the next
        connection subscribes everything again)."""
        if self._transport is not None:
            self._transport.abort()
        self._transport, self._buf, self._out = None, b"", []
        for fut in self._subacks.values():
            if not fut.done():
                fut.set_result(None)
        self._subacks.clear()
        if self._ready:
            self._ready = False
            if tell:
                self._on_state(False)

    def _said(self, err: BaseException) -> None:
        """A lost or refused connection: a refused login or certificate is an ERROR line,
        said once until it changes (the client keeps trying: the broker may be fixed)."""
        refusal = refused(err)
        if refusal is None:
            log.info("MQTT broker %s: %s", self.broker, err or type(err).__name__)
        elif refusal != self._refusal:
            self._refusal = refusal
            log.error("MQTT broker %s refused the connection: %s", self.broker, refusal)

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):  # small packets go at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_in = time.monotonic()
        b = self.broker
        self._write(mw.connect_packet(self.client_id, self.keepalive_s, self._will,
                                      b.username, b.password, v5=self._v5))  # fmt: skip

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        err = exc or ConnectionResetError("the broker closed the connection")
        for sub in self._subacks.values():
            if not sub.done():
                sub.set_result(None)  # the next connection subscribes again
        self._subacks.clear()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)  # closing: nothing more will be acknowledged
        for fut in (self._connack, self._lost):
            if fut is not None and not fut.done():
                fut.set_exception(err)
                fut.exception()  # read: a connection lost before CONNACK is not "unseen"

    def data_received(self, data: bytes) -> None:
        self.last_in = time.monotonic()
        packets, self._buf = mw.split(self._buf + data if self._buf else data)
        try:
            for first, body in packets:
                self._packet(first, body)
        except (mw.MalformedPacket, struct.error, IndexError) as err:
            log.warning("MQTT broker %s sent a packet we cannot read: %s", self.broker, err)
            if self._transport is not None:
                self._transport.abort()
            return
        self._read_in_pass += len(data)
        if self._read_in_pass >= BACKLOG_READ and self._transport is not None:
            self._transport.pause_reading()  # what else is ready runs before the next read
            asyncio.get_running_loop().call_soon(self._resume, self._transport)

    def _resume(self, transport: asyncio.Transport) -> None:
        self._read_in_pass = 0
        if transport is self._transport and not transport.is_closing():
            transport.resume_reading()

    def _packet(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == 0x30:  # PUBLISH
            topic, pid, props, payload = mw.read_publish(first, body, self._v5)
            if pid is not None:
                self._write(mw.puback(pid))
            handler = self._on_message
            for sub_id in props.get(mw.SUBSCRIPTION_ID, ()):
                handler = self._shared.get(cast(int, sub_id), (None, handler))[1]
            try:
                handler(topic, payload)
            except Exception:
                log.exception("MQTT message on %s not handled", topic)
        elif kind == 0x40:  # PUBACK
            if self._in_flight.pop(struct.unpack_from("!H", body)[0], None) and self._waiting:
                self._fill()
            if self._drained is not None and not self.in_flight and not self._drained.done():
                self._drained.set_result(None)
        elif kind in (0x90, 0xB0):  # SUBACK, UNSUBACK
            pid = struct.unpack_from("!H", body)[0]
            codes = body[mw.properties(body, 2)[1] :] if self._v5 else body[2:]
            if any(c >= 0x80 for c in codes):
                log.warning("MQTT broker %s refused a subscription", self.broker)
            fut = self._subacks.pop(pid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif kind == 0x20:  # CONNACK
            self._connacked(body)
        elif kind == 0xE0 and self._transport is not None:  # DISCONNECT from the broker
            self._transport.close()

    def _connacked(self, body: bytes) -> None:
        code = body[1] if len(body) > 1 else 255
        fut = self._connack
        if fut is None or fut.done():
            return
        if code != 0:
            fut.set_exception(BrokerRefused(code))
            return
        self._window = MAX_IN_FLIGHT
        if self._v5 and len(body) > 2:
            props, _ = mw.properties(body, 2)
            for most in props.get(mw.RECEIVE_MAXIMUM, ()):
                self._window = min(MAX_IN_FLIGHT, cast(int, most))
        fut.set_result(None)

    # --- writing ---------------------------------------------------------------------

    async def _subscribe(self, filters: list[str], sub_id: int | None = None) -> None:
        await self._subscribing(filters, sub_id)

    def _subscribing(self, filters: list[str], sub_id: int | None = None) -> asyncio.Future[None]:
        """Write a SUBSCRIBE; the future is done at its SUBACK or when the connection is lost."""
        return self._acked(lambda pid: mw.subscribe_packet(pid, filters, v5=self._v5,
                                                           sub_id=sub_id))  # fmt: skip

    def _acked(self, packet: Callable[[int], bytes]) -> asyncio.Future[None]:
        """Write a (UN)SUBSCRIBE made for a new packet id; done at its acknowledgement or
        when the connection is lost."""
        pid = self._next_pid()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subacks[pid] = fut
        self._write(packet(pid))
        return fut

    def _put(self, topic: str, payload: bytes, retain: bool) -> None:
        if len(self._in_flight) >= self._window or self._waiting:
            self._waiting.append((topic, payload, retain))
            return
        pid = self._next_pid()
        self._in_flight[pid] = (topic, payload, retain)
        self._write(mw.publish_packet(topic, payload, pid, retain, False, v5=self._v5))

    def _fill(self) -> None:
        """Publishes that waited for a place in flight go now."""
        while self._waiting and len(self._in_flight) < self._window and self._ready:
            topic, payload, retain = self._waiting.popleft()
            pid = self._next_pid()
            self._in_flight[pid] = (topic, payload, retain)
            self._write(mw.publish_packet(topic, payload, pid, retain, False, v5=self._v5))

    def _write(self, data: bytes) -> None:
        """Queue a packet; the loop pass's packets leave in one socket write."""
        if self._transport is None:
            return
        self._out.append(data)
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        out, self._out = self._out, []
        if out and self._transport is not None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
            self.last_out = time.monotonic()

    def _next_pid(self) -> int:
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self._in_flight and self._pid not in self._subacks:
                return self._pid
