"""Push3 round trip: sendCommand, then the answer on a websocket — 10 clients, 1,000 commands.

    python -m bench.push3rt [--commands 1000] [--clients 10]

A `switchgear demo` (SQLite, real-time clock) with the gateway's delay set to 0
(`SWITCHGEAR_PUSH3_GATEWAY_DELAY_S=0`). Each client opens its own response channel's
websocket, then sends its share of SetRelay commands one after another, each timed from
the POST to the websocket message carrying its msg_id. Prints p50/p99 and messages/s.
The clients' process runs without its cyclic garbage collector while they measure: one
of its collections paused all ten clients at once for 10-15 ms, which was the p99.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.demoproc import start_demo
from bench.run import _free_port


async def client(base: str, creds: dict[str, Any], n: int, name: str) -> list[float]:
    p3 = creds["push3"]
    body = {"command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
            "client": name, "params": {"relay": "Relay_2", "status": "close"}}  # fmt: skip
    url = f"/sendCommand?key={p3['key']}"
    out: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        first = (await c.post(url, json=body)).json()  # makes this client's channel
        host, channel = first["response_channel_host"], first["response_channel_id"]
        async with websockets.connect(f"ws://{host}/ws/{channel}") as ws:
            for _ in range(n):
                t0 = time.perf_counter()
                sent = (await c.post(url, json=body)).json()
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if message["msg_id"] == sent["msg_id"]:
                        break
                out.append((time.perf_counter() - t0) * 1000)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=10)
    args = ap.parse_args()
    db = Path(tempfile.mkdtemp(prefix="switchgear-push3-")) / "p3.db"
    proc, creds = start_demo(db, _free_port(), 1.0, {"SWITCHGEAR_PUSH3_GATEWAY_DELAY_S": "0"})
    try:
        share = args.commands // args.clients
        gc.collect()
        gc.disable()  # the clients' own collections are no part of the server's round trip
        try:
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(client(creds["base_url"], creds, share, f"bench-{i}")
                  for i in range(args.clients))
            )  # fmt: skip
            took = time.perf_counter() - t0
        finally:
            gc.enable()
        ms = sorted(x for r in results for x in r)
        print(json.dumps({
            "commands": len(ms), "clients": args.clients,
            "round_trip_ms_p50": round(ms[len(ms) // 2], 2),
            "round_trip_ms_p99": round(ms[int(len(ms) * 0.99) - 1], 2),
            "messages_per_s": round(len(ms) / took, 1),
        }, indent=2))  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(db.parent, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
