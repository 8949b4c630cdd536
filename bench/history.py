"""History at fleet scale: ingest of 15-minute statuses, and the 10-day query of one device.

    python -m bench.history [--devices 10000] [--days 30] [--backends sqlite,postgresql]

Rows go in through the store's group commit (`Store.commit`, batches of `--batch`
records, as the journal writes them); each row is an `update` status as a power
controller reports it. Ingest is timed inside `Store.commit` (the store's rate); the
rate including building the records is printed beside it. The run holds the garbage
collector as the server does (`gctune.tuned()`). Then 200 random devices' last 10 days
are read the way `/v1/statuses?device=` and the native history read them (a range of the
archive and one of the recent table, oldest first, a page of up to 1,000). PostgreSQL
runs on 127.0.0.1:5432 in a database made for the run and dropped after it. The per-row
cost is printed so a year can be extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from switchgear import gctune
from switchgear.core.model import Device, StatusKind, StatusRecord
from switchgear.core.ports import Batch, Store
from switchgear.storage import SqlStore

PG_ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DAY = 86_400.0
T0 = 1_700_000_000.0


def info(rng: random.Random) -> dict[str, object]:
    return {"duration": 900, "current": round(rng.uniform(0, 19), 2), "voltage": 240.1,
            "power": round(rng.uniform(0, 1125), 2), "temperature": 88.3, "frequency": 60.0,
            "flow": None, "on": True, "toggleIn": 0, "toggleAt": None,
            "firmware": "2.4.1"}  # fmt: skip


async def run(store: Store, devices: int, days: int, batch: int) -> dict[str, object]:
    await store.open()
    try:
        account = await store.add_account(f"h{secrets.token_hex(3)}@example.com", "H", "x")
        ids = []
        for i in range(devices):
            d = await store.add_device(Device(0, account.id, f"PC-HIST{i:07d}-001",
                                              "power-controller-v10", "wh", T0))  # fmt: skip
            ids.append(d.id)
        rng = random.Random(1)
        per_day = 96
        total = devices * days * per_day
        rows: list[StatusRecord] = []
        in_store = 0.0  # time inside Store.commit: the store's own ingest rate
        started = time.perf_counter()
        for step in range(days * per_day):  # time-ordered, as a fleet reports
            ts = T0 + step * 900.0
            for device_id in ids:
                rows.append(StatusRecord(f"{device_id:x}{step:x}", device_id, ts + device_id % 900,
                                         StatusKind.UPDATE, "auto", info(rng), None,
                                         account.id))  # fmt: skip
                if len(rows) >= batch:
                    c0 = time.perf_counter()
                    await store.commit(Batch(statuses=rows))
                    in_store += time.perf_counter() - c0
                    rows = []
        if rows:
            c0 = time.perf_counter()
            await store.commit(Batch(statuses=rows))
            in_store += time.perf_counter() - c0
        ingest_s = time.perf_counter() - started
        end = T0 + days * DAY
        latencies = []
        for device_id in rng.sample(ids, min(200, len(ids))):
            q0 = time.perf_counter()
            page = await store.history([device_id], end - 10 * DAY, end, None, 1000)
            latencies.append((time.perf_counter() - q0) * 1000)
            assert len(page.records) == min(days, 10) * per_day, len(page.records)
        latencies.sort()
        return {
            "rows": total,
            "ingest_rows_per_s": round(total / in_store),
            "ingest_us_per_row": round(in_store / total * 1e6, 2),
            "with_building_the_records_rows_per_s": round(total / ingest_s),
            "year_of_10000_devices_hours": round(
                10_000 * 365 * per_day * in_store / total / 3600, 2
            ),
            "query_10_days_ms_p50": round(statistics.median(latencies), 2),
            "query_10_days_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        }
    finally:
        await store.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    results: dict[str, object] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="switchgear-history-"))
            try:
                results["sqlite"] = await run(SqlStore(f"sqlite:///{folder / 'h.db'}"),
                                              args.devices, args.days, args.batch)  # fmt: skip
            finally:
                shutil.rmtree(folder)  # gigabytes at full size, whatever happened
        elif backend == "postgresql":
            name = f"switchgear_bench_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                results["postgresql"] = await run(SqlStore(url), args.devices, args.days,
                                                  args.batch)  # fmt: skip
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    print(json.dumps({"devices": args.devices, "days": args.days, "batch": args.batch,
                      **results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    with gctune.tuned():
        asyncio.run(main())
