"""Connection and stream attacks on a real `switchgear demo` process, with default limits.

    .venv/bin/python -m bench.transport

2,000 sockets that never finish their headers, 1,000 that never finish their bodies,
all from one address; one token asking for 3,000 event streams; then a revoked token's
stream. Prints what the server answered, how long it took, and whether it kept answering
another client (127.0.0.2) meanwhile.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.demoproc import start_demo

SLOW_HEADERS = 2000
SLOW_BODIES = 1000
STREAMS = 3000


async def _status(port: int, request: bytes) -> str:
    """The status line the server sends to a request that stops short, or how it ended."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as err:
        return f"connect: {err.__class__.__name__}"
    try:
        writer.write(request)
        line = await asyncio.wait_for(reader.readline(), 60)
        return line.decode().strip() or "closed"
    except (OSError, TimeoutError) as err:
        return err.__class__.__name__
    finally:
        writer.close()


async def _attack(port: int, label: str, count: int, request: bytes, base: str) -> None:
    start = time.monotonic()
    attack = asyncio.gather(*(_status(port, request) for _ in range(count)))
    await asyncio.sleep(1)
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # another client
    async with httpx.AsyncClient(base_url=base, timeout=10, transport=other) as c:
        t = time.monotonic()
        ok = (await c.get("/healthz")).status_code
        meanwhile = f"healthz meanwhile: {ok} in {time.monotonic() - t:.2f} s"
    answers = Counter(await attack)
    print(f"{label}: {count} sockets → {dict(answers)} after {time.monotonic() - start:.1f} s; "
          f"{meanwhile}")  # fmt: skip


async def _streams(base: str, token: str) -> None:
    h = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
        opened: list[httpx.Response] = []
        codes: Counter[int] = Counter()
        for _ in range(STREAMS):
            r = await c.send(c.build_request("GET", "/api/v1/events", headers=h), stream=True)
            codes[r.status_code] += 1
            if r.status_code == 200:
                opened.append(r)
            else:
                await r.aclose()
        print(f"one token, {STREAMS} event streams asked → {dict(codes)}")
        for r in opened:
            await r.aclose()


async def _revoked(base: str, token: str) -> None:
    h = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        made = (await c.post("/api/v1/tokens", json={"desc": "bench"}, headers=h)).json()
        mine = {"Authorization": f"Bearer {made['token']}"}
        async with c.stream("GET", "/api/v1/events", headers=mine) as r:
            lines = r.aiter_lines()
            await anext(lines)
            t = time.monotonic()
            await c.delete(f"/api/v1/tokens/{made['id']}", headers=h)
            rest = [line async for line in lines]
            print(f"revoked token's stream ended {time.monotonic() - t:.3f} s after the "
                  f"revocation: {[x for x in rest if x]}")  # fmt: skip


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = 18000 + int(time.time()) % 1000
        proc, creds = start_demo(Path(tmp) / "demo.db", port, speed=0)
        base: Any = creds["base_url"]
        try:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"
            await _attack(port, "headers never finished", SLOW_HEADERS, head, base)
            body = (b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 1000\r\n\r\n{")  # fmt: skip
            await _attack(port, "bodies never finished", SLOW_BODIES, body, base)
            await _streams(base, creds["account"]["token"])
            await _revoked(base, creds["account"]["token"])
        finally:
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    asyncio.run(main())
