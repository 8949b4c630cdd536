"""bench.fleetscale's probes beside a run: the database's own commits, the CPU of
PostgreSQL, when the slow commands were sent and how instants spread."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.fleetbase import cpu_s, percentiles

PROBE_EVERY_S = 0.02  # the database probe's commits: 50 a second, a tenth of the stream's


async def db_probe(url: str, t0: float, seconds: float) -> dict[str, Any]:
    """The disk's and PostgreSQL's part of a command's tail, measured beside the stream: a
    one-row INSERT committed (fsync'd) every 20 ms on a connection of its own. A command
    waits for two commits in turn (the fleet's NVRAM, then the server's record); a probe
    commit over 25 ms is a stall no code of switchgear's is in."""
    conn = await asyncpg.connect(url)
    lat: list[float] = []
    slow: list[tuple[float, float]] = []  # (at, took ms) of the commits over SLOW_S
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (i int)")
        k = 0
        while time.perf_counter() - t0 < seconds:
            await asyncio.sleep(max(0.0, t0 + k * PROBE_EVERY_S - time.perf_counter()))
            t = time.perf_counter()
            await conn.execute("INSERT INTO bench_probe VALUES ($1)", k)
            lat.append(time.perf_counter() - t)
            if lat[-1] > SLOW_S:
                slow.append((round(t - t0, 3), round(lat[-1] * 1000, 1)))
            k += 1
    finally:
        await conn.close()
    return {**percentiles(lat), "commits": len(lat), "over_slow_at_s_took_ms": slow[:40]}


SLOW_S = 0.025  # the p99 budget: a command past it is "slow"


def timeline(slow: list[tuple[float, float, float]],
             long_commits: list[tuple[float, float]]) -> dict[str, Any]:  # fmt: skip
    """When the slow commands were sent (a count a second of the run), and the slowest."""
    per_s: dict[int, int] = {}
    for at, _ans, _took in slow:
        per_s[int(at)] = per_s.get(int(at), 0) + 1
    worst = sorted(slow, key=lambda x: -x[2])[:10]
    return {"count": len(slow), "per_second": dict(sorted(per_s.items())),
            "worst_sent_at_s_answer_ms_done_ms": [(round(a, 3), round(b * 1000, 1),
                                                   round(c * 1000, 1)) for a, b, c in worst],
            "server_commits_over_slow_at_s_took_ms": [(round(a, 3), round(b * 1000, 1))
                                                      for a, b in long_commits]}  # fmt: skip


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL process on this machine that lives now (its backends
    come and go: a difference is a lower bound when one ended between the two reads)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if (proc / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += cpu_s(int(proc.name))
    return total


def spread(instants: list[float]) -> dict[str, int]:
    """When the first, 10th, 50th, 90th percentile and last of some instants came (ms)."""
    if not instants:
        return {}
    xs = sorted(instants)
    at = {"first": 0, "p10": len(xs) // 10, "p50": len(xs) // 2, "p90": len(xs) * 9 // 10}
    out = {k: round(xs[i] * 1000) for k, i in at.items()}
    out["last"] = round(xs[-1] * 1000)
    return out
