"""Keep-alive pings of a fleet process whose sessions came up together: the loop's stalls.

    python -m bench.pingstorm [--sessions 5000] [--keepalive 8] [--seconds 20]

One `SessionPool` of `--sessions` lean MQTT sessions (as one fleet process runs) on the
run's own Mosquitto, all connected at once and then idle, so they go idle together; the
pool's ticker pings each one every round. A 1 ms timer measures how late the event loop
runs it (what a command in flight waits): side by side, the ticker as it was (every
session looked at in one pass: `PING_SLICES` 1) and as it is (one slice a tick). The
keep-alive is shortened from 30 s to `--keepalive` so that a run sees several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fleetbase import own_broker, percentiles, until
from switchgear.links import twinsession
from switchgear.links.twinsession import SessionPool


async def lag(
    sessions: int, keepalive: int, seconds: float, slices: int, port: int
) -> dict[str, Any]:
    twinsession.PING_SLICES = slices
    pool = SessionPool("127.0.0.1", port, keepalive_s=keepalive)
    up = 0

    def state(ok: bool) -> None:
        nonlocal up
        up += 1 if ok else -1

    for i in range(sessions):
        pool.session(f"sgbench-ping-{slices}-{i}").start(lambda _t, _p: None, state)
    await until(lambda: up == sessions, 120, "every session up")
    late: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)
    await pool.close()
    over = sum(1 for x in late if x > 0.025)
    return {"ping_slices": slices, "loop_late": percentiles(late), "ticks_over_25ms": over}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--keepalive", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    sliced = twinsession.PING_SLICES
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = own_broker(Path(tmp))
        try:
            for slices in (1, sliced, 1, sliced):
                r = asyncio.run(lag(args.sessions, args.keepalive, args.seconds, slices, port))
                print(json.dumps(r))
        finally:
            broker.terminate()
            broker.wait(10)


if __name__ == "__main__":
    main()
