"""The server's lean MQTT client: its frames, QoS 1 kept until PUBACK and sent again after
a reconnect, the broker's receive maximum, keep-alive pings, a refused login, shared
subscriptions on the real broker and a restart of a private one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import struct
from collections.abc import AsyncIterator, Iterator

import pytest

from switchgear.errors import DeviceOffline
from switchgear.links import mqttwire as mw
from switchgear.links.leanmqtt import LeanTransport
from switchgear.links.mqttclient import refused
from tests.api.test_mqtt_devices import BROKER, require_broker, until
from tests.api.test_mqtt_reconnect import PrivateBroker, broker  # noqa: F401 (a fixture)


def test_a_v5_subscription_identifier_goes_out_and_comes_back() -> None:
    frame = mw.subscribe_packet(7, ["$share/g/a/+"], v5=True, sub_id=300)
    assert frame[0] == 0x82
    (_, body), = mw.split(frame)[0]  # fmt: skip
    props, end = mw.properties(body, 2)
    assert props == {mw.SUBSCRIPTION_ID: [300]} and body[end:] == mw.text(b"$share/g/a/+") + b"\1"
    # a PUBLISH as the broker sends it to that subscription
    head = mw.text(b"a/b") + b"\x00\x09" + b"\x03" + bytes((mw.SUBSCRIPTION_ID,)) + mw.length(300)
    topic, pid, props, payload = mw.read_publish(0x32, head + b"hi", v5=True)
    assert (topic, pid, props, payload) == ("a/b", b"\x00\x09", {0x0B: [300]}, b"hi")


def test_a_v5_connect_carries_empty_properties_and_will_properties() -> None:
    frame = mw.connect_packet("c", 30, ("w", b"x"), "u", "p", v5=True)
    (_, body), = mw.split(frame)[0]  # fmt: skip
    assert body[:7] == b"\x00\x04MQTT\x05" and body[7] == 0x02 | 0x04 | 0x08 | 0x20 | 0xC0
    assert body[10:] == b"\x00" + mw.text(b"c") + b"\x00" + mw.text(b"w") + mw.text(b"x") + (
        mw.text(b"u") + mw.text(b"p")
    )


def test_an_unknown_property_is_a_malformed_packet() -> None:
    with pytest.raises(mw.MalformedPacket):
        mw.properties(b"\x00\x00\x02\x7f\x00", 2)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 268_435_455])
def test_a_variable_byte_integer_reads_back_whatever_its_size(n: int) -> None:
    encoded = mw.length(n)
    assert mw.varint(b"\xaa" + encoded + b"\x00", 1) == (n, 1 + len(encoded))


def test_a_variable_byte_integer_cut_short_is_a_malformed_packet() -> None:
    for cut in (b"", b"\x80", b"\xff\xff", b"\xff\xff\xff\xff\x01"):
        with pytest.raises(mw.MalformedPacket):
            mw.varint(cut, 0)


class FakeBroker:
    """A scripted broker on a free port: CONNACK as told, PUBACKs only when told."""

    def __init__(self, connack: bytes = b"\x20\x02\x00\x00", ack: bool = False) -> None:
        self.connack, self.ack = connack, ack
        self.got: list[tuple[int, bytes]] = []  # every packet, (first byte, body)
        self.conns: list[asyncio.StreamWriter] = []
        self.writes = 0  # socket reads that brought packets (a coalesced write is one)
        self.port = 0

    async def __aenter__(self) -> FakeBroker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        for w in self.conns:
            w.close()
        self.server.close()

    def publishes(self) -> list[tuple[int, bytes]]:
        return [(f, b) for f, b in self.got if f & 0xF0 == 0x30]

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.conns.append(w)
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._read(r, w)

    async def _read(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        buf = b""
        while data := await r.read(65536):
            self.writes += 1
            packets, buf = mw.split(buf + data)
            for first, body in packets:
                self.got.append((first, body))
                if first == 0x10:
                    w.write(self.connack)
                elif first & 0xF0 == 0x30 and self.ack:
                    w.write(mw.puback(body[2 + struct.unpack_from("!H", body)[0] :][:2]))
                elif first == 0x82:
                    w.write(b"\x90\x03" + body[:2] + b"\x01")


def pid_of(body: bytes) -> int:
    n = struct.unpack_from("!H", body)[0]
    return int(struct.unpack_from("!H", body, 2 + n)[0])


async def test_a_publish_is_sent_again_with_dup_after_a_reconnect_until_its_puback() -> None:
    async with FakeBroker() as fb:
        t = LeanTransport("127.0.0.1", fb.port, "sgtest-lean")
        ups: list[bool] = []
        t.start(lambda _t, _p: None, ups.append)
        try:
            await until(lambda: ups == [True])
            for i in range(3):  # one loop pass: one socket write
                await t.publish("a/b", b"%d" % i)
            await until(lambda: len(fb.publishes()) == 3)
            assert fb.writes == 2  # CONNECT, then the three publishes together
            assert t.in_flight == 3  # no PUBACK yet
            fb.ack = True
            fb.conns[0].close()  # the connection drops
            await until(lambda: ups == [True, False, True], seconds=5)
            await until(lambda: t.in_flight == 0)
            again = fb.publishes()[3:]
            assert [b[-1:] for _, b in again] == [b"0", b"1", b"2"]
            assert all(f & 0x08 for f, _ in again)  # DUP
            assert [pid_of(b) for _, b in again] == [pid_of(b) for _, b in fb.publishes()[:3]]
        finally:
            await t.close()
        await until(lambda: fb.got[-1] == (0xE0, b""))  # a clean DISCONNECT: no last will


async def test_no_more_than_the_brokers_receive_maximum_is_in_flight() -> None:
    connack = b"\x20\x06\x00\x00\x03" + bytes((mw.RECEIVE_MAXIMUM,)) + b"\x00\x02"
    async with FakeBroker(connack) as fb:
        t = LeanTransport("127.0.0.1", fb.port, "sgtest-lean5", v5=True)
        t.start(lambda _t, _p: None, lambda _up: None)
        try:
            await until(lambda: t.connected)
            for i in range(5):
                await t.publish("a/b", b"%d" % i)
            await until(lambda: len(fb.publishes()) == 2)
            await asyncio.sleep(0.05)
            assert len(fb.publishes()) == 2 and t.in_flight == 5
            w = fb.conns[0]
            for _, body in fb.publishes():
                w.write(mw.puback(struct.pack("!H", pid_of(body))))
            await until(lambda: len(fb.publishes()) == 4)
            assert [b[-1:] for _, b in fb.publishes()] == [b"0", b"1", b"2", b"3"]
        finally:
            await t.close()


async def test_an_idle_connection_pings_the_broker() -> None:
    async with FakeBroker() as fb:
        t = LeanTransport("127.0.0.1", fb.port, "sgtest-ping", keepalive_s=1)
        t.start(lambda _t, _p: None, lambda _up: None)
        try:
            await until(lambda: (0xC0, b"") in fb.got, seconds=3)
        finally:
            await t.close()


@pytest.mark.parametrize(("v5", "code"), [(False, 5), (True, 135)])
async def test_a_refused_login_is_one_clear_error_line(
    v5: bool, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeBroker(connack=b"\x20\x03\x00" + bytes((code,)) + b"\x00") as fb:
        t = LeanTransport("127.0.0.1", fb.port, "sgtest-refused", v5=v5)
        with caplog.at_level(logging.ERROR, "switchgear.links.leanmqtt"):
            t.start(lambda _t, _p: None, lambda _up: None)
            try:
                await until(lambda: len([g for g in fb.got if g[0] == 0x10]) >= 2, seconds=5)
            finally:
                await t.close()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1  # said once, though it kept trying
    assert "bad user name or password, or not authorised" in lines[0]
    with pytest.raises(DeviceOffline):
        await t.publish("a/b", b"x")


@pytest.fixture
def unique() -> Iterator[str]:
    yield f"sgtest-{secrets.token_hex(5)}"


@pytest.fixture
async def pair(unique: str) -> AsyncIterator[list[LeanTransport]]:
    require_broker()
    ts = [LeanTransport(*BROKER, f"{unique}-{i}", v5=True) for i in range(3)]
    yield ts
    for t in ts:
        await t.close()


@pytest.mark.mqtt
async def test_a_shared_subscription_deals_each_message_to_one_member(
    pair: list[LeanTransport], unique: str
) -> None:
    plain: list[list[bytes]] = [[], []]
    shared: list[list[bytes]] = [[], []]
    sender = pair[2]
    sender.start(lambda _t, _p: None, lambda _up: None)
    for i in range(2):
        pair[i].start(lambda _t, p, i=i: plain[i].append(p), lambda _up: None)
        await pair[i].subscribe(f"{unique}/+/events")
        await pair[i].share(unique, f"{unique}/+/events", lambda _t, p, i=i: shared[i].append(p))
    await until(lambda: all(t.connected for t in pair))
    await until(lambda: len(pair[1]._subacks) == 0)
    sent = [b"%d" % n for n in range(40)]
    for p in sent:
        await sender.publish(f"{unique}/d{p.decode()}/events", p)
    await until(lambda: len(shared[0]) + len(shared[1]) == 40 and len(plain[1]) == 40)
    assert plain[0] == sent and plain[1] == sent  # every member's plain copy, in order
    assert sorted(shared[0] + shared[1], key=int) == sent  # each message dealt once
    assert shared[0] and shared[1]  # to both members


@pytest.mark.mqtt
async def test_subscriptions_come_back_after_a_broker_restart(
    broker: PrivateBroker,  # noqa: F811
    unique: str,
) -> None:
    t = LeanTransport("127.0.0.1", broker.port, f"{unique}-s", v5=True)
    other = LeanTransport("127.0.0.1", broker.port, f"{unique}-o")
    got: list[bytes] = []
    mine: list[bytes] = []
    ups: list[bool] = []
    t.start(lambda _t, p: got.append(p), ups.append)
    other.start(lambda _t, _p: None, lambda _up: None)
    try:
        await t.subscribe(f"{unique}/x")
        await t.share("g", f"{unique}/x", lambda _t, p: mine.append(p))
        await until(lambda: ups == [True] and other.connected)
        broker.stop()
        await until(lambda: ups == [True, False])
        with pytest.raises(DeviceOffline):
            await t.publish(f"{unique}/x", b"away")
        broker.start()
        await until(lambda: ups == [True, False, True] and other.connected, seconds=20)
        await until(lambda: not t._subacks)
        await other.publish(f"{unique}/x", b"back")
        await until(lambda: got == [b"back"] and mine == [b"back"])
    finally:
        await t.close()
        await other.close()


def test_what_the_operator_must_fix_is_said_for_a_login_or_tls_refusal() -> None:
    assert "bad user name or password" in (refused(mw.BrokerRefused(134)) or "")
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "self-signed certificate in certificate chain"
    assert refused(err) == (
        "its TLS certificate is not trusted (self-signed certificate in certificate chain): "
        "see SWITCHGEAR_MQTT_CA"
    )
    assert refused(mw.BrokerRefused(3)) is None  # server unavailable: just try again
    assert refused(ConnectionResetError()) is None


async def test_close_sends_what_is_buffered_then_disconnects() -> None:
    async with FakeBroker(ack=True) as fb:
        t = LeanTransport("127.0.0.1", fb.port, "sgtest-close")
        t.start(lambda _t, _p: None, lambda _up: None)
        await until(lambda: t.connected)
        big = b"x" * 20_000
        for _ in range(500):  # 10 MB: more than a socket takes at once
            await t.publish("a/b", big)
        await t.close()
        await until(lambda: fb.got[-1:] == [(0xE0, b"")], seconds=10)
        assert len(fb.publishes()) == 500


class _Reads(asyncio.Transport):
    """A socket's transport as the protocol sees it: whether reading is paused."""

    def __init__(self) -> None:
        super().__init__()
        self.paused: list[bool] = []  # each pause (True) and resume (False), in order

    def pause_reading(self) -> None:
        self.paused.append(True)

    def resume_reading(self) -> None:
        self.paused.append(False)

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass


async def test_a_backlog_read_lets_the_loop_run_before_the_next_read() -> None:
    """A burst of reports (1 MiB read) is handled, then reading pauses for one pass of the
    event loop: what waited (a commit's answer, a request) runs first."""
    t = LeanTransport("127.0.0.1", 1, "sgtest-backlog")
    heard: list[str] = []
    t._on_message = lambda topic, _p: heard.append(topic)
    reads = _Reads()
    t._transport = reads
    ran_between: list[list[bool]] = []
    burst = b"".join(mw.publish_packet(f"d/{i}/events", b"x" * 1000, i + 1, False, False)
                     for i in range(1100))  # fmt: skip
    assert len(burst) >= 1024 * 1024
    asyncio.get_running_loop().call_soon(lambda: ran_between.append(list(reads.paused)))
    t.data_received(burst)
    assert len(heard) == 1100 and reads.paused == [True]  # all of this read, then a pause
    await asyncio.sleep(0)
    assert ran_between == [[True]]  # waiting work ran while reading was paused
    assert reads.paused == [True, False]  # and reading resumed after it
    t.data_received(mw.publish_packet("d/x/events", b"{}", 1101, False, False))
    assert reads.paused == [True, False] and len(heard) == 1101  # a small read: no pause
