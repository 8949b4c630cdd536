"""A group commit on PostgreSQL: the former path against one statement, side by side.

    [SWITCHGEAR_TEST_PG=postgresql://.../postgres] python -m bench.pgcommit [--commits 2000]

A command's commit on the server carries one command record, one status and the clock
(meta); the former path took a connection from SQLAlchemy's pool and ran BEGIN, an
executemany (commands), COPY (statuses), an executemany (meta) and COMMIT; the new one
(storage/pgone.py) sends one statement (data-modifying CTEs over unnest()ed arrays) on
a connection from the same pool. Baseline, side by side: `SELECT 1` on a held connection
(one round trip). Also an NVRAM flush of 1,500 rows (a fleet's burst), executemany in a
transaction against one unnest statement, with PostgreSQL's own CPU (its backend's
/proc stat). Each figure is a mean over `--commits`, in a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import create_async_engine

from switchgear.core.model import (
    CommandRecord,
    CommandState,
    Device,
    StatusKind,
    StatusRecord,
)
from switchgear.core.ports import Batch
from switchgear.storage import SqlStore, bulk, pgone

ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def backend_cpu_s(pid: int) -> float:
    """CPU of the PostgreSQL backend serving a connection (same machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(n: int, pid: int, one: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    """Mean wall, client CPU and backend CPU of `one(i)` over n calls."""
    b, cpu, t = backend_cpu_s(pid), time.process_time(), time.perf_counter()
    for i in range(n):
        await one(i)
    return {"wall_us": round((time.perf_counter() - t) / n * 1e6),
            "client_cpu_us": round((time.process_time() - cpu) / n * 1e6),
            "backend_cpu_us": round((backend_cpu_s(pid) - b) / n * 1e6)}  # fmt: skip


async def run(url: str, n: int) -> dict[str, Any]:
    store = SqlStore(url)
    await store.open()
    account = await store.add_account("bench@example.com", "Bench", "h")
    device = await store.add_device(Device(0, account.id, "PC-BENCH-001",
                                           "power-controller-v10", "wh", 1.0))  # fmt: skip
    w = store.writes

    def batch(i: int) -> Batch:
        rec = CommandRecord(f"c{i}", device.id, account.id, "pc.config", {"ffr": {}},
                            CommandState.DONE, 1.0, 2.0, {"ok": True})  # fmt: skip
        st = StatusRecord(f"s{i}", device.id, 2.0, StatusKind.UPDATE, "config", {"a": 1}, None,
                          account.id)  # fmt: skip
        return Batch(statuses=[st], commands={rec.id: rec}, meta={"clock": float(i)})

    engine = create_async_engine(store.url)
    held = await asyncpg.connect(url)
    pid = await held.fetchval("SELECT pg_backend_pid()")

    async def former(i: int) -> None:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            async with pg.transaction():
                for stmt, rows in bulk.planned(w, batch(i)):
                    if stmt is w.statuses:
                        await pg.copy_records_to_table("statuses", records=rows,
                                                       columns=stmt.columns)  # fmt: skip
                    else:
                        await pg.executemany(stmt.sql, rows)

    async def one(i: int) -> None:  # as the store commits: a pool checkout, one statement
        plan = bulk.planned(w, batch(i + n))
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            await pg.execute(pgone.statement(tuple(s for s, _ in plan)), *pgone.arguments(plan))

    async def select1(_i: int) -> None:
        await held.execute("SELECT 1")

    out: dict[str, Any] = {}
    async with engine.connect() as conn:  # the former path's backend: the pool's only one
        raw = await conn.get_raw_connection()
        former_pid = await raw.driver_connection.fetchval("SELECT pg_backend_pid()")
    for round_ in (1, 2):  # alternated, twice
        out[f"select1_{round_}"] = await timed(n, pid, select1)
        base = round_ * 10 * n  # fresh command ids each round
        out[f"former_{round_}"] = await timed(n, former_pid, lambda i, b=base: former(i + b))
        out[f"one_statement_{round_}"] = await timed(n, former_pid, lambda i, b=base: one(i + b))
    # a fleet's NVRAM flush in a burst: 1,500 controllers' blobs upserted
    more = await store.add_devices([Device(0, account.id, f"PC-BENCH{k:05d}-001",
                                           "power-controller-v10", "wh", 1.0)
                                    for k in range(1500)])  # fmt: skip
    blob = {"v": 1, "channels": [{"on": False, "settings": {"power_on": "last"}}],
            "pc": {"config": {"ffr": {"enabled": True, "tripThreshold": 59.7}},
                   "ffr": {"tripped": True, "restore": True, "events": 3}}}  # fmt: skip
    nvram = bulk.keyed_rows({d.id: blob for d in more})
    upsert = pgone.statement((w.nvram,))

    async def nvram_executemany(_i: int) -> None:
        async with held.transaction():
            await held.executemany(w.nvram.sql, nvram)

    async def nvram_one_statement(_i: int) -> None:
        await held.execute(upsert, *pgone.arguments([(w.nvram, nvram)]))

    for round_ in (1, 2):
        out[f"nvram_1500_executemany_{round_}"] = await timed(20, pid, nvram_executemany)
        out[f"nvram_1500_one_statement_{round_}"] = await timed(20, pid, nvram_one_statement)
    await held.close()
    await engine.dispose()
    await store.close()
    return out


async def main_async(n: int) -> dict[str, Any]:
    name = f"sg_bench_pgcommit_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await run(ADMIN.rsplit("/", 1)[0] + f"/{name}", n)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=2000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args.commits)), indent=1))


if __name__ == "__main__":
    main()
