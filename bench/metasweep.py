"""Benchmark: the servers' meta sweep (`metasweep.sweep`) against one `Store.meta` read.

    python -m bench.metasweep [--rows 10000] [--rounds 3]
                              [--pg postgresql://postgres@127.0.0.1:5432/sg_tidy]

On SQLite (a temporary file) and PostgreSQL (the database given; the rows it adds are
deleted at the end): the meta table holds `--rows` Shelly timer claims, as many
import-job records and as many rows no sweep touches (`bench-other:N`). Measured in
turns, `--rounds` times, so load from elsewhere falls on all alike: the baseline (one
`meta` read: a round trip), a sweep that deletes nothing (every row within its hour:
what every worker runs every 5 minutes) and a sweep that deletes every claim and record
(the first sweep after a long outage). Printed: CPU (process_time) and wall
milliseconds, medians, and each as a ratio of the baseline. Target: a sweep that
deletes nothing costs under 100 ms of CPU with 10,000 rows of each kind (under 0.05 %
of a core at one sweep per 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from switchgear import importjobs, metasweep
from switchgear.core.ports import Batch, Store
from switchgear.importjobs import Job, JobState
from switchgear.links.shellygroup import TIMER_CLAIM
from switchgear.storage import SqlStore

T0 = 1_790_000_000.0
TARGET_MS = 100.0  # CPU of a sweep with nothing due, at TARGET_ROWS rows of each kind
TARGET_ROWS = 10_000
OTHER = "bench-other:"  # rows under no swept prefix


def rows(n: int) -> dict[str, Any]:
    """`n` timer claims taken at T0, `n` import jobs finished then, `n` other rows."""
    meta: dict[str, Any] = {}
    for i in range(n):
        meta[f"{TIMER_CLAIM}{i}/{T0 + i!r}/1"] = f"worker-{i % 2}/{T0!r}"
        job = Job(f"{i:024x}", 1, 10, JobState.DONE)
        meta[importjobs.key(job.id)] = importjobs.to_record(job, T0)
        meta[f"{OTHER}{i}"] = {"key": f"ffr:event:1:{i}"}
    return meta


async def timed(what: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """CPU and wall milliseconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    await what()
    return (time.process_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3


async def measure(store: Store, n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {"baseline": [], "nothing due": [], "all due": []}
    for _ in range(rounds):
        await store.commit(Batch(meta=rows(n)))
        out["baseline"].append(await timed(lambda: store.meta(f"{OTHER}0")))
        out["nothing due"].append(await timed(lambda: metasweep.sweep(store, T0 + 1.0)))
        gone = await metasweep.sweep(store, T0 + 2 * 3600.0)  # (timed below, rows put back)
        assert gone == 2 * n, gone
        await store.commit(Batch(meta=rows(n)))
        out["all due"].append(await timed(lambda: metasweep.sweep(store, T0 + 2 * 3600.0)))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/sg_tidy")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite:///{Path(tmp) / 'sweep.db'}", "postgresql": args.pg}
        print(f"{args.rows} rows of each kind, {args.rounds} rounds; medians")
        print(
            f"{'backend':<11} {'case':<12} {'CPU ms':>8} {'wall ms':>8} {'CPU x':>8} {'wall x':>8}"
        )
        for backend, url in urls.items():
            store = SqlStore(url)
            await store.open()
            try:
                got = await measure(store, args.rows, args.rounds)
            finally:
                await store.sweep_meta(OTHER, lambda *_: True)
                await store.close()
            base_cpu = statistics.median(c for c, _ in got["baseline"])
            base_wall = statistics.median(w for _, w in got["baseline"])
            for case, runs in got.items():
                cpu = statistics.median(c for c, _ in runs)
                wall = statistics.median(w for _, w in runs)
                print(f"{backend:<11} {case:<12} {cpu:8.1f} {wall:8.1f} "
                      f"{cpu / base_cpu:8.0f} {wall / base_wall:8.0f}")  # fmt: skip
                if case == "nothing due" and args.rows == TARGET_ROWS:
                    verdict = "met" if cpu < TARGET_MS else "NOT met"
                    print(f"{'':<11} target: nothing due under {TARGET_MS:.0f} ms CPU: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
