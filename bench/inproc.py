"""Benchmark: the hot paths' own cost in-process (no HTTP server), beside the baseline's.

    python -m bench.inproc [--requests 9600] [--rounds 7] [--concurrency 64] [--path send]

Each ASGI app is driven directly by `--concurrency` coroutines on one event loop (uvloop),
so what is measured is the app's CPU per request with no HTTP parsing: the figure to
compare before and after a change to a handler. The served figures (`bench.run`) add
the server's own cost, the same for every path. Reports the median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.types import ASGIApp, Message

from bench.run import seed_demo

Call = Callable[[], Awaitable[int]]


def caller(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> Call:
    """One request to `app` as an ASGI server would make it; returns the status."""
    query = b""
    if "?" in path:
        path, q = path.split("?", 1)
        query = q.encode()
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))

    async def call() -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "headers": list(raw),
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
            "state": {},
        }  # fmt: skip
        status = 0
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return call


async def drive(call: Call, requests: int, concurrency: int) -> float:
    """µs of the loop per request, `concurrency` callers at once."""
    per = requests // concurrency
    bad = 0

    async def worker() -> None:
        nonlocal bad
        for _ in range(per):
            if await call() >= 400:
                bad += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    if bad:
        raise RuntimeError(f"{bad} requests failed")
    return elapsed / (per * concurrency) * 1e6


async def measure(args: argparse.Namespace) -> dict[str, float]:
    from bench.baseline import app as baseline
    from switchgear.app import create_app
    from switchgear.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        db, c = seed_demo(Path(tmp))
        settings = Settings(
            database_url=f"sqlite:///{db}", speed=0, meterhttp_rate_limit=False, log_level="warning"
        )
        app = create_app(settings)
        sp = c["smartplug"]
        auth = {"Authorization": f"Bearer {sp['access_token']}"}
        serial = sp["serials"][0]
        meter = next(m for m in c["meterhttp"]["meters"] if m["version"] == "extended")
        calls: dict[str, Call] = {
            "baseline": caller(baseline, "POST", "/echo", {}, json.dumps(
                {"serial_number": serial, "command": "switch_on_off"}).encode()),
            "fetch": caller(app, "POST", "/provider/fetch", auth,
                            json.dumps({"serial_number": serial}).encode()),
            "send": caller(app, "POST", "/provider/send", auth, json.dumps(
                {"serial_number": serial, "command": "switch_on_off", "state": "on"}).encode()),
            "getdata": caller(app, "GET", f"/?page=getdata&devid={meter['devid']}"
                              f"&devpass={meter['devpass']}", {}),
        }  # fmt: skip
        wanted = ["baseline", *(args.path or ["fetch", "send", "getdata"])]
        out: dict[str, list[float]] = {name: [] for name in wanted}
        async with app.router.lifespan_context(app):  # the runtime, as a server starts it
            gc.collect()
            for _ in range(args.rounds):
                for name in wanted:
                    out[name].append(await drive(calls[name], args.requests, args.concurrency))
        return {name: statistics.median(v) for name, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=9600)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--path", action="append", choices=("fetch", "send", "getdata"))
    args = ap.parse_args()
    import uvloop

    result = uvloop.run(measure(args))
    base = result["baseline"]
    print(f"in-process, {args.concurrency} callers, median of {args.rounds} x {args.requests}")
    print("| path | µs/request | ratio to the baseline's cost |")
    print("|---|---|---|")
    for name, us in result.items():
        print(f"| {name} | {us:.1f} | {us / base:.2f} |")


if __name__ == "__main__":
    main()
