"""The lean per-twin MQTT session: its frames, its last will, and its reports kept over a
broker restart."""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import Iterator
from typing import Any, cast

import aiomqtt
import pytest

from switchgear.links.twinsession import (
    PING_SLICES,
    PINGREQ,
    SessionPool,
    connect_packet,
    publish_packet,
)
from tests.api.test_mqtt_devices import BROKER, require_broker, until
from tests.api.test_mqtt_reconnect import PrivateBroker, broker  # noqa: F401 (a fixture)
from tests.links.test_leanmqtt import FakeBroker


class Wire(asyncio.Transport):
    """A transport that keeps what the session writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out.append(bytes(data))


def test_connect_carries_the_client_id_and_a_retained_qos1_last_will() -> None:
    frame = connect_packet("shellyplug-A1B2C3", 30, ("shellies/shellyplug-A1B2C3/online", b"false"))
    assert frame[0] == 0x10
    assert (
        frame[frame.index(b"MQTT") + 5] == 0x02 | 0x04 | 0x08 | 0x20
    )  # clean, will QoS 1 retained
    assert b"shellyplug-A1B2C3" in frame and frame.endswith(b"\x00\x05false")


def test_frames_split_anywhere_are_read_whole_and_acknowledged() -> None:
    got: list[tuple[str, bytes]] = []
    s = SessionPool("127.0.0.1", 1).session("sgpowerctl-abc")
    s.listen(lambda t, p: got.append((t, p)), lambda _up: None)
    wire = Wire()
    s.connection_made(wire)
    assert wire.out[0].startswith(b"\x10")  # CONNECT first
    body = b"x" * 300  # a remaining length of two bytes
    stream = (publish_packet("sgpowerctl-abc/rpc", body, 0x1234, False, False)
              + b"\xd0\x00"  # PINGRESP
              + publish_packet("sgpowerctl-abc/rpc", b"{}", 7, False, True))  # fmt: skip
    for i in range(len(stream)):  # one byte at a time
        s.data_received(stream[i : i + 1])
    assert got == [("sgpowerctl-abc/rpc", body), ("sgpowerctl-abc/rpc", b"{}")]
    assert wire.out[1:] == [b"\x40\x02\x12\x34", b"\x40\x02\x00\x07"]  # a PUBACK each


def test_a_publish_stays_in_flight_until_its_puback() -> None:
    s = SessionPool("127.0.0.1", 1).session("sgmeter-abc", birth=("sgmeter-abc/online", b"true"))
    wire = Wire()
    s.put("sgmeter-abc/events/rpc", b"{}")  # down: kept
    assert s.in_flight == 1 and not wire.out
    s.connection_made(wire)
    s.data_received(b"\x20\x02\x00\x00")  # CONNACK accepted
    sent = [w for w in wire.out if w[0] & 0xF0 == 0x30]
    assert [w[0] & 0x08 for w in sent] == [0, 0x08]  # the birth, then the report again (DUP)
    for w in sent:
        pid = struct.unpack_from("!H", w, 2 + 2 + struct.unpack_from("!H", w, 2)[0])[0]
        s.data_received(b"\x40\x02" + struct.pack("!H", pid))
    assert s.in_flight == 0


@pytest.fixture
def unique() -> Iterator[str]:
    yield f"sgtest-{secrets.token_hex(5)}"


@pytest.mark.mqtt
async def test_the_broker_publishes_the_last_will_when_the_connection_dies(unique: str) -> None:
    require_broker()
    online = f"{unique}/online"
    pool = SessionPool(*BROKER)
    seen: list[bytes] = []
    async with aiomqtt.Client(*BROKER, identifier=f"{unique}-watch") as watch:
        await watch.subscribe(online, qos=1)

        async def listen() -> None:
            async for m in watch.messages:
                seen.append(bytes(m.payload))  # type: ignore[arg-type]

        task = asyncio.create_task(listen())
        s = pool.session(unique, will=(online, b"false"), birth=(online, b"true"))
        s.start(lambda _t, _p: None, lambda _up: None)
        try:
            await until(lambda: seen == [b"true"])
            assert s.transport is not None
            s.transport.abort()  # as a kill -9 would: no DISCONNECT
            await until(lambda: seen[:2] == [b"true", b"false"])
            await until(lambda: seen[-1:] == [b"true"] and len(seen) == 3)  # back by itself
        finally:
            await pool.close()
            task.cancel()
            await watch.publish(online, b"", retain=True)


@pytest.mark.mqtt
async def test_a_report_made_while_the_broker_is_away_arrives_when_it_is_back(
    broker: PrivateBroker,  # noqa: F811
    unique: str,
) -> None:
    pool = SessionPool("127.0.0.1", broker.port)
    ups: list[bool] = []
    s = pool.session(unique)
    s.start(lambda _t, _p: None, ups.append)
    try:
        await until(lambda: ups == [True])
        broker.stop()
        await until(lambda: ups == [True, False])
        s.put(f"{unique}/report", b"while away", retain=True)
        broker.start()
        await until(lambda: ups == [True, False, True], seconds=20)
        got: list[Any] = []
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"{unique}-w") as w:
            await w.subscribe(f"{unique}/report", qos=1)
            async with asyncio.timeout(5):
                async for m in w.messages:
                    got.append(m.payload)
                    break
        assert got == [b"while away"]
        await until(lambda: s.in_flight == 0)
    finally:
        await pool.close()


async def test_a_sessions_packets_of_one_loop_pass_leave_in_one_write() -> None:
    async with FakeBroker() as fb:
        pool = SessionPool("127.0.0.1", fb.port)
        s = pool.session("sgpowerctl-one")
        ups: list[bool] = []
        s.start(lambda _t, _p: None, ups.append)
        try:
            await until(lambda: ups == [True])
            assert s.transport is not None
            sends: list[bytes] = []
            real = s.transport.write
            s.transport.write = lambda data: (sends.append(bytes(data)), real(data))[1]  # type: ignore[method-assign]
            s.put("sgpowerctl-one/events/rpc", b"report")  # a command's report and its
            s.put("switchgear-x/rpc", b"answer")  # answer, made in one pass
            await until(lambda: len(fb.publishes()) == 2)
            assert len(sends) == 1 and sends[0].endswith(b"answer")
        finally:
            await pool.close()


def idle_pool(n: int, keepalive_s: int = 30) -> tuple[SessionPool, list[Wire]]:
    """`n` sessions up, every one silent since the start (as a fleet after its connects)."""
    pool = SessionPool("127.0.0.1", 1, keepalive_s=keepalive_s)
    wires = []
    for i in range(n):
        s = pool.session(f"sgpowerctl-idle-{i}")
        s.transport, s.ready = Wire(), True
        s.last_in = s.last_out = 0.0
        wires.append(cast(Wire, s.transport))
    return pool, wires


def test_keepalive_pings_of_sessions_idle_together_are_spread_over_the_round() -> None:
    # 5,000 sessions that came up together go idle together: one ping each per round,
    # never the whole process's pings in one loop pass (a 100-200 ms stall of commands)
    pool, wires = idle_pool(5000)
    now = 30 * 0.75
    per_tick = [pool.tick(part, now) for part in pool.round()]
    assert sum(per_tick) == 5000
    assert all(w.out == [PINGREQ] for w in wires)
    assert len(per_tick) == PING_SLICES and max(per_tick) <= -(-5000 // PING_SLICES)


def test_a_session_heard_lately_is_not_pinged_and_one_silent_too_long_is_dropped() -> None:
    pool, wires = idle_pool(2)
    quiet, gone = sorted(pool.sessions, key=lambda s: s.client_id)
    quiet.last_out, quiet.last_in = 40.0, 40.0  # wrote 6 s before the check: not idle
    gone.last_out, gone.last_in = 20.0, 0.0  # the broker silent for 46 s (> 1.5 x 30)
    aborted: list[bool] = []
    assert gone.transport is not None
    gone.transport.abort = lambda: aborted.append(True)  # type: ignore[method-assign]
    assert sum(pool.tick(part, 46.0) for part in pool.round()) == 0
    assert aborted == [True] and all(w.out == [] for w in wires)
