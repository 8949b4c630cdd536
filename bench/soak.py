"""Soak: mixed reads and commands on every face for a bounded time, memory sampled.

    python -m bench.soak [--minutes 10] [--workers 32]

Loopback only; stops by itself. A `switchgear demo` (SQLite, speed 1, meter rate limit
off) gets as many requests as `--workers` concurrent clients can send: native reads,
smart-plug fetch and send, multisocket reads, power-controller reads, commands and
statuses, Push3 commands, smart-MAIC reads. The server's resident memory is sampled every
10 s. Prints the request rate, every non-2xx answer, p50/p99 per kind, and the memory
trend (least-squares slope over the run after the first minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.demoproc import start_demo
from bench.run import _free_port

Request = Callable[[httpx.AsyncClient, dict[str, Any], random.Random], Awaitable[httpx.Response]]


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mix(devices: list[dict[str, Any]]) -> dict[str, tuple[int, Request]]:
    """Request kinds and their weights."""
    native_ids = [d["id"] for d in devices]
    plug = next(d for d in devices if d["model"] == "SHPLG-1")

    async def native_get(
        c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random
    ) -> httpx.Response:
        return await c.get(
            f"/api/v1/devices/{r.choice(native_ids)}", headers=_h(cr["account"]["token"])
        )

    async def native_switch(
        c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random
    ) -> httpx.Response:
        return await c.post(
            f"/api/v1/devices/{plug['id']}/channels/0/switch",
            json={"action": r.choice(["on", "off"])},
            headers=_h(cr["account"]["token"]),
        )

    async def sp_fetch(
        c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random
    ) -> httpx.Response:
        s = cr["smartplug"]
        return await c.post(
            "/provider/fetch",
            json={"serial_number": s["serials"][0]},
            headers=_h(s["access_token"]),
        )

    async def sp_send(c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random) -> httpx.Response:
        s = cr["smartplug"]
        return await c.post(
            "/provider/send",
            json={
                "serial_number": s["serials"][0],
                "command": "switch_on_off",
                "state": r.choice(["on", "off"]),
            },
            headers=_h(s["access_token"]),
        )

    async def ms_get(c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random) -> httpx.Response:
        s = cr["multisocket"]
        return await c.get(
            f"/multioutlet/plug/energy/addressLocation/plants/{s['plant_id']}"
            "/parameter/type/value/outlet",
            headers={
                "Ocp-Apim-Subscription-Key": s["subscription_key"],
                "Authorization": s["id_token"],
            },
        )

    async def pc_get(c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random) -> httpx.Response:
        s = cr["powercontroller"]
        return await c.get(f"/v1/devices/{r.choice(s['device_ids'])}", headers=_h(s["token"]))

    async def pc_command(
        c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random
    ) -> httpx.Response:
        s = cr["powercontroller"]
        return await c.post(
            f"/v1/devices/{s['device_ids'][1]}/command",
            json={"command": {"name": r.choice(["on", "off"])}},
            headers=_h(s["token"]),
        )

    async def pc_statuses(
        c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random
    ) -> httpx.Response:
        s = cr["powercontroller"]
        return await c.get(
            "/v1/statuses",
            params={"device": s["device_ids"][0], "limit": "50"},
            headers=_h(s["token"]),
        )

    async def push3(c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random) -> httpx.Response:
        s = cr["push3"]
        return await c.post(
            f"/sendCommand?key={s['key']}",
            json={
                "command": "SetRelay",
                "target": "meter",
                "target_id": s["meters"][0],
                "params": {"relay": "Relay_2", "status": r.choice(["open", "close"])},
            },
        )

    async def meter(c: httpx.AsyncClient, cr: dict[str, Any], r: random.Random) -> httpx.Response:
        m = r.choice(cr["meterhttp"]["meters"])
        return await c.get(f"/?page=getdata&devid={m['devid']}&devpass={m['devpass']}")

    return {
        "native_get": (4, native_get),
        "native_switch": (1, native_switch),
        "smartplug_fetch": (4, sp_fetch),
        "smartplug_send": (1, sp_send),
        "multisocket_get": (2, ms_get),
        "pc_get": (2, pc_get),
        "pc_command": (1, pc_command),
        "pc_statuses": (1, pc_statuses),
        "push3_send": (1, push3),
        "meter_getdata": (2, meter),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    xs, ys = [t / 60 for t, _ in samples], [m for _, m in samples]
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="switchgear-soak-"))
    env = {"SWITCHGEAR_METERHTTP_RATE_LIMIT": "false"}
    proc, creds = start_demo(tmp / "soak.db", _free_port(), 1.0, env)
    try:
        async with httpx.AsyncClient(base_url=creds["base_url"]) as c:
            devices = (await c.get("/api/v1/devices", headers=_h(creds["account"]["token"]))).json()
        kinds = mix(devices)
        names = list(kinds)
        weights = [kinds[n][0] for n in names]
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: Counter[str] = Counter()
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        end = start + args.minutes * 60

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            limits = httpx.Limits(max_connections=1)
            async with httpx.AsyncClient(
                base_url=creds["base_url"], timeout=30, limits=limits
            ) as c:
                while time.monotonic() < end:
                    name = rng.choices(names, weights)[0]
                    t0 = time.perf_counter()
                    try:
                        r = await kinds[name][1](c, creds, rng)
                        ok = 200 <= r.status_code < 300
                        if not ok:
                            errors[f"{name} {r.status_code}"] += 1
                    except httpx.HTTPError as err:
                        errors[f"{name} {type(err).__name__}"] += 1
                    latencies[name].append(time.perf_counter() - t0)

        async def sampler() -> None:
            while time.monotonic() < end:
                samples.append((time.monotonic() - start, rss_mb(proc.pid)))
                print(
                    f"{samples[-1][0]:6.0f} s  rss {samples[-1][1]:7.1f} MB  "
                    f"requests {sum(len(v) for v in latencies.values())}",
                    flush=True,
                )
                await asyncio.sleep(10)

        await asyncio.gather(sampler(), *(worker(i) for i in range(args.workers)))
        took = time.monotonic() - start
        total = sum(len(v) for v in latencies.values())
        every = sorted(x for v in latencies.values() for x in v)
        settled = [s for s in samples if s[0] >= 60] or samples
        report = {
            "minutes": args.minutes,
            "workers": args.workers,
            "requests": total,
            "rate_per_s": round(total / took, 1),
            "errors": dict(errors),
            "p50_ms": round(every[len(every) // 2] * 1000, 1),
            "p99_ms": round(every[int(len(every) * 0.99)] * 1000, 1),
            "per_kind_p99_ms": {
                n: round(sorted(v)[int(len(v) * 0.99)] * 1000, 1)
                for n, v in sorted(latencies.items())
                if v
            },
            "rss_mb_first": samples[0][1],
            "rss_mb_last": samples[-1][1],
            "rss_slope_mb_per_min_after_1min": round(slope_per_minute(settled), 3),
        }
        print(json.dumps(report, indent=2))
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    asyncio.run(main())
