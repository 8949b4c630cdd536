"""Benchmark: what a limit check costs in memory and in PostgreSQL (shared by workers).

    python -m bench.counters [--checks 2000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Times the sign-in reservation's shape (three counted adds, two of them limited, on
keys that never reach their limit) one after another, then the same from 2 "workers"
(two engines, each with 8 in flight) on one database. Printed side by side with the
in-memory counters, the embedded default, as the baseline, and beside the database's
own floor (a transaction of `SELECT 1`, three per reservation): ratios, because the
machine is shared. A scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

import asyncpg
import sqlalchemy as sa

from switchgear.core.counters import Counters, MemoryCounters
from switchgear.storage import SqlStore
from switchgear.storage.counters import SqlCounters


async def reserve(c: Counters, i: int) -> None:
    now = time.time()
    await c.add("signin.address", f"addr{i % 500}", now, now + 300, limit=1 << 30)
    await c.add("signin.pair", f"e{i}\naddr{i % 500}", now, now + 300, limit=1 << 30)
    await c.add("signin.account", f"e{i % 1000}", now, now + 300)


async def serial(c: Counters, n: int) -> tuple[float, float]:
    """(checks a second, p99 ms) one after another."""
    took = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await reserve(c, i)
        took.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return n / total, statistics.quantiles(took, n=100)[98] * 1000


async def parallel(workers: list[Counters], n: int, in_flight: int = 8) -> float:
    """Checks a second with `in_flight` concurrent reservations on each worker."""
    done = 0

    async def lane(c: Counters, lane_id: int) -> None:
        nonlocal done
        while done < n:
            done += 1
            await reserve(c, done * 7 + lane_id)

    start = time.perf_counter()
    await asyncio.gather(*(lane(c, k) for c in workers for k in range(in_flight)))
    return n / (time.perf_counter() - start)


async def round_trips(store: SqlStore, n: int) -> float:
    """Reservations a second if each were three bare transactions (the database's floor)."""
    start = time.perf_counter()
    for _ in range(n):
        for _ in range(3):
            async with store.engine.begin() as conn:
                await conn.execute(sa.text("SELECT 1"))
    return n / (time.perf_counter() - start)


async def main(checks: int, admin: str) -> None:
    name = f"sg_bench_counters_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    stores = [SqlStore(url), SqlStore(url)]
    try:
        for s in stores:
            await s.open()
        memory = MemoryCounters()
        sql = [SqlCounters(s.engine) for s in stores]
        base_rate, base_p99 = await serial(memory, checks)
        pg_rate, pg_p99 = await serial(sql[0], checks)
        mem_par = await parallel([memory], checks)
        pg_par = await parallel(sql, checks)
        floor = await round_trips(stores[0], checks)
        print(
            "| counters | reservations/s, serial | p99 ms | reservations/s, 2 workers x 8 | ratio |"
        )
        print("|---|---|---|---|---|")
        print(f"| memory (baseline) | {base_rate:,.0f} | {base_p99:.3f} | {mem_par:,.0f} | 1.00 |")
        print(f"| PostgreSQL | {pg_rate:,.0f} | {pg_p99:.2f} | {pg_par:,.0f} |"
              f" {pg_rate / base_rate:.4f} |")  # fmt: skip
        print(f"| PostgreSQL floor: 3 x `SELECT 1` transactions | {floor:,.0f} | | |"
              f" {floor / base_rate:.4f} |")  # fmt: skip
    finally:
        for s in stores:
            await s.close()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    asyncio.run(main(args.checks, args.pg))
