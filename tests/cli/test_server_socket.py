"""The listening socket `serve` and `demo` bind: its connections answer without delay."""

from __future__ import annotations

import asyncio
import socket

from switchgear.cli.server import bind


async def test_connections_of_the_bound_socket_send_small_writes_at_once() -> None:
    sock = bind("127.0.0.1", 0)
    sock.listen()
    accepted: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Keep(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            accepted.set_result(transport)

    server = await asyncio.get_running_loop().create_server(Keep, sock=sock)
    _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
    transport = await asyncio.wait_for(accepted, 5)
    try:
        conn = transport.get_extra_info("socket")
        # Nagle off: an answer's body does not wait behind its headers for the client's ACK
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        transport.close()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
