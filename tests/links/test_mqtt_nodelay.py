"""The server's broker connection sends small packets at once: Nagle off (a packet held
back waited up to 40 ms for the broker's delayed ACK)."""

from __future__ import annotations

import asyncio
import secrets
import socket

from switchgear.links.leanmqtt import LeanTransport
from tests.api.test_mqtt_devices import BROKER, require_broker, until


async def test_the_server_connection_has_nagle_off() -> None:
    require_broker()
    tag = f"sgtest-nodelay-{secrets.token_hex(4)}"
    transport = LeanTransport(*BROKER, client_id=tag)
    got: list[bytes] = []
    transport.start(lambda _t, payload: got.append(payload), lambda _up: None)
    try:
        await transport.subscribe(f"{tag}/echo")
        await until(lambda: transport.connected)
        assert transport._transport is not None
        sock = transport._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        # a burst: every publish and PUBACK goes out
        await asyncio.gather(*(transport.publish(f"{tag}/echo", b"%d" % i) for i in range(15)))
        await until(lambda: len(got) == 15)
        assert sorted(got, key=int) == [b"%d" % i for i in range(15)]
    finally:
        await transport.close()
