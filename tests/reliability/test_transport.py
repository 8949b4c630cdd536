"""Connections and streams under attack, over real HTTP (uvicorn on loopback).

The server runs with the options `switchgear serve` gives uvicorn (`transport_options`),
with short deadlines and small caps so each attack shows in a second or two: sockets
that never finish their headers or bodies, more connections than the cap, more streams
than one credential may hold, and streams whose credential is revoked or expires.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE, KIND_PUSH3_KEY
from switchgear.cli.server import transport_options
from switchgear.demo import credentials, seed
from switchgear.dialects.push3.channels import hub
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_mqtt_devices import until

HEADER_S = 0.5
BODY_S = 0.5
MAX_CONNECTIONS = 300
PER_CREDENTIAL = 4
CAP = 100


@dataclass
class Server:
    rt: Runtime
    base: str
    port: int
    creds: dict[str, Any]
    uv: uvicorn.Server

    def took(self, writers: list[asyncio.StreamWriter]) -> bool:
        """Whether the server has taken each of these connections on (it counts them)."""
        ours = {tuple(w.get_extra_info("sockname")) for w in writers}
        return ours <= {tuple(c.client) for c in self.uv.server_state.connections if c.client}

    @property
    def native(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['account']['token']}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=5)

    async def channel(self, key: str) -> str:
        """A Push3 response channel of the demo account (made by a command)."""
        p3 = self.creds["push3"]
        body = {"command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
                "params": {"relay": "Relay_2", "status": "open",
                           "meter_password": p3["meter_password"]}}  # fmt: skip
        async with self.client() as c:
            r = await c.post(f"/sendCommand?key={key}", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["response_channel_id"])


@asynccontextmanager
async def running(**limits: Any) -> AsyncIterator[Server]:
    """The demo estate served by uvicorn on a loopback port, with `limits`."""
    settings = Settings(database_url="memory://", speed=0, push3_gateway_delay_s=0,
                        secret_key="test-secret-key-of-at-least-32-bytes", **limits)  # fmt: skip
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1, **transport_options(settings))  # fmt: skip
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    while not uv.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    rt: Runtime = app.state.runtime
    creds = await credentials(rt, await seed(rt), base)
    try:
        yield Server(rt, base, port, creds, uv)
    finally:
        uv.should_exit = True
        await task


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with running(header_timeout_s=HEADER_S, body_timeout_s=BODY_S,
                       max_connections=MAX_CONNECTIONS,
                       max_connections_per_client=MAX_CONNECTIONS,
                       streams_per_credential=PER_CREDENTIAL) as s:  # fmt: skip
        yield s


async def _read_all(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes (TimeoutError if it does not)."""
    data = b""
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                return data
            if not chunk:
                return data
            data += chunk


async def _slow_headers(
    port: int, trickle: bool, held: list[asyncio.StreamWriter]
) -> tuple[bytes, float]:
    """Start a request and never finish its headers (a line now and then, or nothing);
    the connection joins `held` once open."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    held.append(writer)
    try:
        if trickle:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for _ in range(10):  # 2.5 s of a header line every quarter second
                try:
                    first = await asyncio.wait_for(reader.read(65536), 0.25)
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
                    continue
                return first + await _read_all(reader, 5), time.monotonic() - start
        return await _read_all(reader, 5), time.monotonic() - start
    finally:
        writer.close()


async def test_headers_that_never_finish_are_cut_off_with_408(server: Server) -> None:
    many = 250
    held: list[asyncio.StreamWriter] = []
    attacks = [_slow_headers(server.port, i % 2 == 0, held) for i in range(many)]
    started = asyncio.gather(*attacks)
    await until(lambda: len(held) == many)  # every one is connected, hanging on
    async with server.client() as c:  # the server still answers while they hang on
        assert (await c.get("/healthz")).status_code == 200
    results = await started
    for answer, took in results:
        assert took < HEADER_S + 1.5  # the trickle did not extend the deadline
        if answer:  # a silent socket may just be closed; a started request gets 408
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"application/problem+json" in answer
    assert sum(1 for a, _ in results if a) >= many // 2


async def test_a_body_that_never_finishes_is_cut_off_with_408(server: Server) -> None:
    async def slow_body() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        try:
            return await _read_all(reader, 5)
        finally:
            writer.close()

    start = time.monotonic()
    answers = await asyncio.gather(*(slow_body() for _ in range(100)))
    assert time.monotonic() - start < BODY_S + 2
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"request body not received" in answer


async def test_headers_larger_than_the_limit_get_431(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(20):
            writer.write(b"X-Big: " + b"a" * 8000 + b"\r\n")
        await writer.drain()
    except ConnectionError:
        pass
    answer = await _read_all(reader, 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_keep_alive_connection_serves_requests_within_the_deadlines(
    server: Server,
) -> None:
    async with server.client() as c:
        for _ in range(3):  # the same connection, idle less than the keep-alive
            assert (await c.get("/healthz")).status_code == 200
            await asyncio.sleep(HEADER_S * 0.6)
        big = {"email": "a@example.com", "password": "x" * 8, "desc": "d" * 50_000}
        r = await c.post("/api/v1/tokens", json=big)
        assert r.status_code in (400, 401, 422)  # an answer, not a 408


async def _hold(
    server: Server, count: int, source: str = "127.0.0.1"
) -> list[asyncio.StreamWriter]:
    """`count` connections that start a request and never finish it, once the server has
    taken each on."""
    held = []
    for _ in range(count):
        _, w = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))
        w.write(b"GET /healthz HTTP/1.1\r\n")
        held.append(w)
    await until(lambda: server.took(held))
    return held


async def _healthz(port: int, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        return await _read_all(reader, 5)
    finally:
        writer.close()


async def _served_again(port: int, within_s: float = 5.0) -> bytes:
    """The first answer that is not a 503, asked again as soon as one comes (the server
    frees a closed connection's place when it sees the close), or the last 503."""
    deadline = time.monotonic() + within_s
    answer = await _healthz(port)
    while answer.startswith(b"HTTP/1.1 503 ") and time.monotonic() < deadline:
        answer = await _healthz(port)
    return answer


async def test_connections_past_the_cap_are_refused_with_503() -> None:
    async with running(max_connections=CAP, header_timeout_s=30) as server:
        held = await _hold(server, CAP // 2)
        held += await _hold(server, CAP - CAP // 2, source="127.0.0.2")
        try:
            answer = await _healthz(server.port, source="127.0.0.3")
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"retry-after" in answer.lower()
        finally:
            for w in held:
                w.close()
        answer = await _served_again(server.port)  # room again once they are gone
        assert answer.startswith(b"HTTP/1.1 200 ")


async def test_one_address_cannot_take_every_connection() -> None:
    async with running(max_connections_per_client=CAP, header_timeout_s=30) as server:
        held = await _hold(server, CAP)
        try:
            assert (await _healthz(server.port)).startswith(b"HTTP/1.1 503 ")
            other = await _healthz(server.port, source="127.0.0.2")
            assert other.startswith(b"HTTP/1.1 200 ")  # another client is served
        finally:
            for w in held:
                w.close()
        assert (await _served_again(server.port)).startswith(b"HTTP/1.1 200 ")


async def _sse(c: httpx.AsyncClient, token: str) -> tuple[httpx.Response, Any]:
    req = c.build_request("GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    r = await c.send(req, stream=True)
    return r, r.aiter_lines()


async def test_one_token_holds_at_most_its_streams(server: Server) -> None:
    token = server.creds["account"]["token"]
    async with httpx.AsyncClient(
        base_url=server.base, timeout=5, limits=httpx.Limits(max_connections=50)
    ) as c:
        opened = [await _sse(c, token) for _ in range(PER_CREDENTIAL)]
        assert all(r.status_code == 200 for r, _ in opened)
        r, _ = await _sse(c, token)
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        await r.aread()
        assert "too many open streams" in r.json()["detail"]
        other, _ = await _sse(c, server.creds["other_account"]["token"])
        assert other.status_code == 200  # another credential is not affected
        await other.aclose()
        await opened[0][0].aclose()
        tries: list[httpx.Response] = []

        async def freed() -> bool:  # a closed stream frees its place, once the server sees it
            r, _ = await _sse(c, token)
            tries.append(r)
            if r.status_code != 200:
                await r.aclose()
            return r.status_code == 200

        await until(freed)
        again = tries[-1]
        assert {t.status_code for t in tries[:-1]} <= {429}
        for resp in [again, *(r for r, _ in opened[1:])]:
            await resp.aclose()


async def test_one_push3_key_holds_at_most_its_streams(server: Server) -> None:
    key = server.creds["push3"]["key"]
    channel = await server.channel(key)
    async with httpx.AsyncClient(
        base_url=server.base, timeout=5, limits=httpx.Limits(max_connections=50)
    ) as c:
        subs = []
        for _ in range(PER_CREDENTIAL - 1):
            r = await c.send(c.build_request("GET", f"/sub/{channel}?key={key}"), stream=True)
            assert r.status_code == 200
            subs.append(r)
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/{channel}?key={key}")
        r = await c.send(c.build_request("GET", f"/sub/{channel}?key={key}"), stream=True)
        assert r.status_code == 429
        await r.aread()
        assert "too many open streams" in r.json()["error"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/{channel}?key={key}")
        assert refused.value.response.status_code == 429
        assert b"too many open streams" in refused.value.response.body
        await ws.close()
        for s in subs:
            await s.aclose()


class Events:
    """An SSE stream read in the background: each event as (name, data), then None at its end."""

    def __init__(self, lines: Any) -> None:
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._read(lines))

    async def _read(self, lines: Any) -> None:
        event, data = "", ""
        async for line in lines:
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif not line and event:
                await self.queue.put((event, data))
                event, data = "", ""
        await self.queue.put(None)

    async def next(self, within: float = 5) -> tuple[str, str] | None:
        return await asyncio.wait_for(self.queue.get(), within)

    async def until_end(self) -> str:
        """The `end` event's reason, after which the stream must be over."""
        while (found := await self.next()) is not None and found[0] != "end":
            pass
        assert found is not None, "the stream closed without an end event"
        assert await self.next() is None  # and the stream is over
        return str(json.loads(found[1])["reason"])


async def test_an_event_stream_ends_when_its_token_is_revoked(server: Server) -> None:
    async with server.client() as c:
        made = await c.post("/api/v1/tokens", json={"desc": "watcher"}, headers=server.native)
        token, token_id = made.json()["token"], made.json()["id"]
        r, lines = await _sse(c, token)
        assert r.status_code == 200
        events = Events(lines)
        plug = server.rt.engine.devices(1)[0]
        await c.post(f"/api/v1/devices/{plug.id}/channels/0/switch", json={"action": "toggle"},
                     headers=server.native)  # fmt: skip
        first = await events.next()
        assert first is not None and first[0] != "end"  # events flow while the token is good
        gone = await c.delete(f"/api/v1/tokens/{token_id}", headers=server.native)
        assert gone.status_code == 204
        assert await events.until_end() == "credential revoked"
        await r.aclose()


async def test_an_event_stream_ends_when_its_token_expires(server: Server) -> None:
    async with server.client() as c:
        made = await c.post("/api/v1/tokens", json={"expires_in": 60}, headers=server.native)
        r, lines = await _sse(c, made.json()["token"])
        events = Events(lines)
        await c.post("/api/v1/sim/clock/advance", json={"seconds": 59}, headers=server.native)
        with pytest.raises(TimeoutError):  # still open a second before its expiry
            while (found := await events.next(within=0.5)) and found[0] != "end":
                pass
        await c.post("/api/v1/sim/clock/advance", json={"seconds": 2}, headers=server.native)
        assert await events.until_end() == "credential expired"
        await r.aclose()


async def _closed(ws: Any) -> websockets.exceptions.ConnectionClosed:
    """How the server closed the socket (messages before it are skipped)."""
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.exceptions.ConnectionClosed as closed:
            return closed


async def test_push3_streams_end_when_their_key_is_revoked(server: Server) -> None:
    async with server.client() as c:
        made = await c.post("/api/v1/credentials", json={"kind": KIND_PUSH3_KEY},
                            headers=server.native)  # fmt: skip
        key, key_id = made.json()["key"], made.json()["id"]
        channel = await server.channel(key)
        sub = await c.send(c.build_request("GET", f"/sub/{channel}?key={key}"), stream=True)
        assert sub.status_code == 200
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/{channel}?key={key}")
        await until(lambda: len(hub(server.rt).get(channel).listeners) == 2)  # both read it
        gone = await c.delete(f"/api/v1/credentials/{key_id}", headers=server.native)
        assert gone.status_code == 204
        await asyncio.wait_for(sub.aread(), 5)  # the chunked stream ends
        closed = await _closed(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 4401
        assert closed.rcvd.reason == "credential revoked"


async def test_push3_streams_end_when_their_key_expires(server: Server) -> None:
    rt = server.rt
    _, key = await rt.auth.issue(1, KIND_PUSH3_KEY, 30.0, desc="short-lived")
    channel = await server.channel(key)
    async with server.client() as c:
        sub = await c.send(c.build_request("GET", f"/sub/{channel}?key={key}"), stream=True)
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/{channel}?key={key}")
        await c.post("/api/v1/sim/clock/advance", json={"seconds": 31}, headers=server.native)
        await asyncio.wait_for(sub.aread(), 5)
        closed = await _closed(ws)
        assert closed.rcvd is not None and closed.rcvd.reason == "credential expired"


async def test_a_native_token_is_not_a_push3_stream_credential(server: Server) -> None:
    _, token = await server.rt.auth.issue(1, KIND_NATIVE, 60.0)
    channel = await server.channel(server.creds["push3"]["key"])
    async with server.client() as c:
        r = await c.get(f"/sub/{channel}?key={token}")
    assert r.status_code == 404 and "error" in r.json()
