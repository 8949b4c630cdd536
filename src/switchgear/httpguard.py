"""Connection admission and read deadlines on top of uvicorn's HTTP protocols.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but sets no deadline on
a request that is still arriving: a client that opens a connection and sends its headers
(or its body) a byte at a time, or nothing at all, holds the connection for ever. It
also caps concurrency only once a request's headers are in (`limit_concurrency`), so
connections that never finish their headers are never counted against it. `guarded()`
subclasses uvicorn's own protocol class (httptools or h11, as uvicorn would pick) and
adds, per connection:

- a cap on open HTTP connections, in all and per client address: one past
  `max_connections` (or `max_connections_per_client` from one address) is answered 503
  at once and closed (upgraded websockets leave the count; their cap is per credential);
- a header deadline: from the first byte of a request (or the connection's opening) to
  its last header, at most `header_timeout_s` and `max_header_bytes` (408 / 431);
- a body deadline: a request's body must arrive whole within `body_timeout_s` of its
  headers (408 when no answer has started, else the connection is closed).

Answers here come before any face has seen the request, so they are plain RFC 9457
problem documents with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large",
           503: b"Service Unavailable"}  # fmt: skip


WARN_EVERY_S = 10.0


@dataclass(frozen=True)
class Limits:
    """What one connection may take: see the Settings of the same names."""

    max_connections: int = 1000
    max_connections_per_client: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 64 * 1024


def refusal(status: int, detail: str, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection."""
    title = REASONS[status].decode()
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    head = [
        b"HTTP/1.1 %d %s" % (status, REASONS[status]),
        b"content-type: application/problem+json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body.encode()


class _Guard:
    """Mixed in before a uvicorn HTTP protocol class (see `guarded`)."""

    limits: Limits = Limits()
    per_client: dict[str, int]  # open connections by client address, one dict per server
    warned: list[float]  # when a refusal was last logged
    # attributes of the uvicorn protocol this mixin reads
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        self._address: str | None = str(peer[0]) if isinstance(peer, tuple) else ""
        mine = self.per_client.get(self._address or "", 0)
        self._refused = (
            len(self.connections) >= self.limits.max_connections
            or mine >= self.limits.max_connections_per_client
        )
        if self._refused:
            if time.monotonic() - self.warned[0] > WARN_EVERY_S:  # not a line per attacker
                self.warned[0] = time.monotonic()
                log.warning("connections refused (e.g. from %s): %d open, %d from it",
                            self._address, len(self.connections), mine)  # fmt: skip
            transport.write(refusal(503, "too many open connections", retry_after=1))
            transport.close()
            return
        self.per_client[self._address or ""] = mine + 1
        self._deadline: asyncio.TimerHandle | None = None
        self._seen: Any = None  # the request whose headers arrived last
        self._header_bytes = 0
        super().connection_made(transport)  # type: ignore[misc]
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        self._leave()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        cycle = self.cycle
        idle = cycle is self._seen and (cycle is None or cycle.response_complete)
        if idle and self._deadline is None:  # the first byte of a keep-alive request
            self._await_headers()
        super().data_received(data)  # type: ignore[misc]
        if self.transport.get_protocol() is not self:  # type: ignore[comparison-overlap]
            # upgraded to a websocket
            self._disarm()
            self._leave()
        elif self.cycle is not self._seen:  # a request's headers are complete
            self._started()
        elif idle:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, f"request headers over {self.limits.max_header_bytes} bytes")
        elif not self.cycle.more_body:
            self._disarm()  # the body is in

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self.transport.is_closing():
            return
        if self.cycle is not self._seen:  # a pipelined request was parsed meanwhile
            self._started()
        elif self.cycle.response_complete:
            self._disarm()  # idle: uvicorn's keep-alive timeout runs until the next byte

    def _started(self) -> None:
        self._seen = self.cycle
        self._disarm()
        if self.cycle.more_body and not self.cycle.response_complete:
            self._arm(self.limits.body_timeout_s, "request body")

    def _leave(self) -> None:
        """This connection no longer counts against its address (closed or upgraded)."""
        if self._address is None:
            return
        left = self.per_client.get(self._address, 1) - 1
        if left > 0:
            self.per_client[self._address] = left
        else:
            self.per_client.pop(self._address, None)
        self._address = None

    def _await_headers(self) -> None:
        self._header_bytes = 0
        self._arm(self.limits.header_timeout_s, "request headers")

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        log.info("closing a connection: %s not received within %ss", what, seconds)
        self._refuse(408, f"{what} not received within {seconds:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._disarm()
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's own answer, if any, is dropped
            cycle.message_event.set()
        if not answered and not self.transport.is_closing():
            self.transport.write(refusal(status, detail))
        self.transport.close()


def guarded(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools when installed, else h11) with `limits`."""
    base: type[asyncio.Protocol]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(
        "GuardedHTTPProtocol",
        (_Guard, base),
        {"limits": limits, "per_client": {}, "warned": [-WARN_EVERY_S]},
    )
