"""A tenant's device list with 100,000 other devices present vs with 100, side by side.

    python -m bench.tenantlist [--devices 100000] [--small 100] [--rounds 300]

Two apps in this process, each on an in-memory store and a manual clock: a crowd account
with `--small` or `--devices` simulated plugs, and a tenant with five devices. Round after
round, each app answers the tenant's `GET /api/v1/devices` (and `?family=plug`) in turn
(A B, then B A), driven through ASGI (no HTTP parsing). For each: CPU (process_time) and
wall time per request, medians and p90, and the ratio big/small. Then the baseline on the same
servers: the same rounds with the engine listing as it did before its account index (a
walk over every device of the fleet, filtered by account). Before both: the CPU of a
`/metrics` render at each size, beside the walk its device gauge used to make.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from bench.inproc import caller
from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.catalog import model as catalog_model
from switchgear.core.engine import Engine
from switchgear.core.model import Device, Family
from switchgear.metrics import render
from switchgear.runtime import Runtime
from switchgear.settings import Settings

SECRET = "bench-secret-key-of-at-least-32-bytes!"
TENANT = ("SHPLG-1", "LG-MULTI-4", "SHPLG-1", "D101", "SHPLG-1")
BATCH = 5_000
Server = tuple[Runtime, Callable[[str], Awaitable[int]], int]  # runtime, GET, tenant id


def old_devices(
    engine: Engine, account_id: int, family: Family | None = None, tag: str | None = None
) -> list[Device]:
    """`Engine.devices` as it was before its account index: a walk over the whole fleet."""
    out = [
        d
        for d in engine.all_devices()
        if d.account_id == account_id
        and (family is None or catalog_model(d.model).family == family)
        and (tag is None or tag in d.tags)
    ]
    return sorted(out, key=lambda d: d.id)


async def server(
    stack: AsyncExitStack, crowd: int
) -> tuple[Runtime, Callable[[str], Awaitable[int]], int]:
    """An app with `crowd` devices of one account and five of a tenant; a GET caller."""
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                        registrations_per_hour=1_000_000)  # fmt: skip
    app = create_app(settings)
    await stack.enter_async_context(app.router.lifespan_context(app))
    rt: Runtime = app.state.runtime
    other = await rt.auth.create_account("crowd@example.com", "Crowd", "correct horse C")
    tenant = await rt.auth.create_account("t@example.com", "Tenant", "correct horse T")
    now = rt.clock.now()
    for start in range(0, crowd, BATCH):
        await rt.add_devices([Device(0, other.id, f"SPCROWD{i:07d}", "SHPLG-1", f"c{i}", now)
                              for i in range(start, min(crowd, start + BATCH))])  # fmt: skip
    await rt.add_devices([Device(0, tenant.id, f"{i:010d}", m, f"t{i}", now)
                          for i, m in enumerate(TENANT)])  # fmt: skip
    _, token = await rt.auth.issue(tenant.id, KIND_NATIVE, 3600.0)
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> Awaitable[int]:
        return caller(app, "GET", path, headers)()

    return rt, get, tenant.id


def summary(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9)]


async def rounds_of(a: Server, b: Server, path: str, small: int, devices: int, rounds: int) -> None:
    """Alternate GETs of `path` on both servers; print medians, p90 and the ratio."""
    cpu: dict[str, list[float]] = {"small": [], "big": []}
    wall: dict[str, list[float]] = {"small": [], "big": []}
    for r in range(rounds):
        order = [("small", a), ("big", b)] if r % 2 == 0 else [("big", b), ("small", a)]
        for name, (_, get, _) in order:
            c0, w0 = time.process_time(), time.perf_counter()
            status = await get(path)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
            assert status == 200, status
    (cs, cs90), (cb, cb90) = summary(cpu["small"]), summary(cpu["big"])
    (ws, _), (wb, _) = summary(wall["small"]), summary(wall["big"])
    print(f"GET {path}: CPU median {cs * 1e6:.0f} us at {small}, {cb * 1e6:.0f} us at "
          f"{devices} (ratio {cb / cs:.2f}x; p90 {cs90 * 1e6:.0f} / {cb90 * 1e6:.0f} us); "
          f"wall median ratio {wb / ws:.2f}x")  # fmt: skip


def old_gauge(engine: Engine) -> Counter[tuple[str, str]]:
    """The /metrics device gauge as it was counted before: a walk over every device."""
    counts: Counter[tuple[str, str]] = Counter()
    for device in engine.all_devices():
        family = str(catalog_model(device.model).family)
        counts[family, "online" if engine.shadow(device.id).online else "offline"] += 1
    return counts


async def scrapes(a: Server, b: Server, small: int, devices: int, n: int) -> None:
    """CPU of a /metrics render at both sizes, and of the former walk for its gauge."""
    works: list[tuple[str, Callable[[Runtime], object]]] = [
        ("/metrics render", render),
        ("baseline: the former gauge walk alone", lambda rt: old_gauge(rt.engine)),
    ]
    for label, work in works:
        cpu: dict[str, list[float]] = {"small": [], "big": []}
        for _ in range(n):
            for name, (rt, _, _) in (("small", a), ("big", b)):
                c0 = time.process_time()
                work(rt)
                cpu[name].append(time.process_time() - c0)
        (cs, _), (cb, _) = summary(cpu["small"]), summary(cpu["big"])
        print(f"{label}: CPU median {cs * 1e6:.0f} us at {small}, {cb * 1e6:.0f} us at "
              f"{devices} (ratio {cb / cs:.2f}x)")  # fmt: skip


async def main(devices: int, small: int, rounds: int) -> None:
    async with AsyncExitStack() as stack:
        t0 = time.process_time()
        a = await server(stack, small)
        b = await server(stack, devices)
        print(f"filled: {small} and {devices} devices in {time.process_time() - t0:.1f} s CPU")
        await scrapes(a, b, small, devices, max(10, rounds // 10))
        for label in ("account index", "baseline: the former fleet scan"):
            if label.startswith("baseline"):
                for rt, _, _ in (a, b):  # the same servers, listing as the engine used to
                    rt.engine.devices = functools.partial(old_devices, rt.engine)  # type: ignore[method-assign]
            print(f"-- {label}")
            for path in ("/api/v1/devices", "/api/v1/devices?family=plug"):
                await rounds_of(a, b, path, small, devices, rounds)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--small", type=int, default=100)
    p.add_argument("--rounds", type=int, default=300)
    args = p.parse_args()
    asyncio.run(main(args.devices, args.small, args.rounds))
