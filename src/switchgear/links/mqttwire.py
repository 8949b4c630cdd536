"""MQTT 3.1.1 and 5 framing shared by the twins' sessions and the server's lean client.

Only what switchgear speaks: CONNECT (clean session, optional retained QoS 1 last will and
login), PUBLISH and SUBSCRIBE at QoS 1, PUBACK, PINGREQ, DISCONNECT; reading splits a
byte stream into whole packets and, for MQTT 5, reads a packet's properties.
"""

from __future__ import annotations

import struct

PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"

# MQTT 5 property identifiers used here
RECEIVE_MAXIMUM = 0x21
SUBSCRIPTION_ID = 0x0B

# MQTT 5 property sizes by identifier: 1, 2, 4 bytes, "v" a variable byte integer, "s"
# a length-prefixed string or binary, "p" a string pair
_PROPERTY_SIZE: dict[int, int | str] = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
    0x0B: "v",
    **dict.fromkeys((0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F), "s"),
    0x26: "p",
}

Properties = dict[int, list[int | bytes]]


class MalformedPacket(ValueError):
    """A packet this side cannot read (the connection is dropped)."""


_REASONS = {
    1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorised", 128: "unspecified error",
    132: "unsupported protocol version", 133: "client id not valid",
    134: "bad user name or password", 135: "not authorised", 136: "server unavailable",
    137: "server busy", 138: "banned",
}  # fmt: skip


class BrokerRefused(ConnectionError):
    """The broker answered CONNECT with a refusal (`code`: its CONNACK return code)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"[code:{code}] {_REASONS.get(code, 'refused')}")


def length(n: int) -> bytes:
    """MQTT's variable byte integer."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A variable byte integer at `pos`: (value, the position after it)."""
    if pos < len(buf) and buf[pos] < 0x80:  # one byte: a subscription id, a short length
        return buf[pos], pos + 1
    value, mult = 0, 1
    for i in range(pos, min(pos + 4, len(buf))):
        digit = buf[i]
        value += (digit & 0x7F) * mult
        mult *= 128
        if not digit & 0x80:
            return value, i + 1
    raise MalformedPacket("a variable byte integer runs past its packet")


def text(s: bytes) -> bytes:
    """A length-prefixed string."""
    return struct.pack("!H", len(s)) + s


def packet(first: int, body: bytes) -> bytes:
    """A whole packet: its first byte, remaining length and body."""
    return bytes((first,)) + length(len(body)) + body


def connect_packet(
    client_id: str,
    keepalive_s: int,
    will: tuple[str, bytes] | None,
    username: str | None = None,
    password: str | None = None,
    *,
    v5: bool = False,
) -> bytes:
    """CONNECT with a clean session and, if given, a retained QoS 1 last will and a login."""
    flags, payload = 0x02, text(client_id.encode())
    if will is not None:
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
        payload += (b"\x00" if v5 else b"") + text(will[0].encode()) + text(will[1])
    if username is not None:
        flags |= 0x80
        payload += text(username.encode())
        if password is not None:
            flags |= 0x40
            payload += text(password.encode())
    level = b"\x05" if v5 else b"\x04"
    head = b"\x00\x04MQTT" + level + bytes((flags,)) + struct.pack("!H", keepalive_s)
    return packet(0x10, head + (b"\x00" if v5 else b"") + payload)


def publish_packet(
    topic: str, payload: bytes, pid: int, retain: bool, dup: bool, *, v5: bool = False
) -> bytes:
    """PUBLISH at QoS 1 (MQTT 5: no properties)."""
    first = 0x32 | (0x08 if dup else 0) | (0x01 if retain else 0)
    head = text(topic.encode()) + struct.pack("!H", pid) + (b"\x00" if v5 else b"")
    return packet(first, head + payload)


def subscribe_packet(
    pid: int, filters: list[str], *, v5: bool = False, sub_id: int | None = None
) -> bytes:
    """SUBSCRIBE, every filter at QoS 1; MQTT 5 may carry a subscription identifier."""
    props = b""
    if sub_id is not None:
        props = bytes((SUBSCRIPTION_ID,)) + length(sub_id)
    head = struct.pack("!H", pid) + (length(len(props)) + props if v5 else b"")
    return packet(0x82, head + b"".join(text(f.encode()) + b"\x01" for f in filters))


def unsubscribe_packet(pid: int, filters: list[str], *, v5: bool = False) -> bytes:
    """UNSUBSCRIBE (MQTT 5: no properties)."""
    head = struct.pack("!H", pid) + (b"\x00" if v5 else b"")
    return packet(0xA2, head + b"".join(text(f.encode()) for f in filters))


def puback(pid: bytes) -> bytes:
    """PUBACK of the two-byte packet id `pid` (MQTT 5: success, no reason code)."""
    return b"\x40\x02" + pid


def split(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole packets at the start of `buf` as (first byte, body), and what is left."""
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(buf)
    while end - pos >= 2:
        n, mult, i = 0, 1, pos + 1
        while i < end:
            digit = buf[i]
            n += (digit & 0x7F) * mult
            mult *= 128
            i += 1
            if not digit & 0x80:
                break
        else:
            break  # the length itself is not all here yet
        if i + n > end:
            break
        out.append((buf[pos], buf[i : i + n]))
        pos = i + n
    return out, (buf[pos:] if pos < end else b"")


def properties(body: bytes, pos: int) -> tuple[Properties, int]:
    """MQTT 5 properties at `pos` (their length first): by identifier, and where they end."""
    n, pos = varint(body, pos)
    end = pos + n
    if end > len(body):
        raise MalformedPacket("properties run past their packet")
    props: Properties = {}
    while pos < end:
        ident = body[pos]
        size = _PROPERTY_SIZE.get(ident)
        pos += 1
        value: int | bytes
        if size == "v":
            value, pos = varint(body, pos)
        elif size == "s" or size == "p":
            for _ in range(2 if size == "p" else 1):
                k = struct.unpack_from("!H", body, pos)[0]
                value, pos = body[pos + 2 : pos + 2 + k], pos + 2 + k
        elif isinstance(size, int):
            value, pos = int.from_bytes(body[pos : pos + size], "big"), pos + size
        else:
            raise MalformedPacket(f"unknown MQTT 5 property {ident:#x}")
        props.setdefault(ident, []).append(value)
    if pos != end:
        raise MalformedPacket("properties do not end where their length says")
    return props, end


def read_publish(first: int, body: bytes, v5: bool) -> tuple[str, bytes | None, Properties, bytes]:
    """A PUBLISH: (topic, its two-byte packet id or None at QoS 0, properties, payload)."""
    n = struct.unpack_from("!H", body)[0]
    topic = body[2 : 2 + n].decode(errors="replace")
    pos, pid = 2 + n, None
    if first & 0x06:  # QoS 1 (QoS 2 is never asked for)
        pid, pos = body[pos : pos + 2], pos + 2
    props: Properties = {}
    if v5:
        if body[pos] == 0:  # no properties: the usual case
            pos += 1
        else:
            props, pos = properties(body, pos)
    return topic, pid, props, body[pos:]
