"""Migration 0009 (devices' MQTT ids in a unique column) on a big fleet: how long an upgrade
stops a deployment.

    python -m bench.migrate0009 [--devices 100000] [--database sqlite|postgresql]

A database is migrated to 0008 and filled with N devices (twins of every family on their
derived MQTT id, one in 50 on an id chosen at placement, one in 20 an adopted Shelly on
its own id), then upgraded to 0009 (`alembic upgrade`, as `open()` runs it), timed.
Baseline, side by side on a copy of the same rows: the database's own cost of touching
every row once, `UPDATE devices SET mqtt_id = serial` after the same `ADD COLUMN`, and the
same unique index built on it. PostgreSQL (`SWITCHGEAR_TEST_PG`) gets databases of its own,
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from bench.fleetbase import PG_ADMIN
from switchgear.storage.sqlbase import alembic_config
from switchgear.storage.url import async_url

MODELS = ("SHPLG-1", "power-controller-v10", "LG-MULTI-4", "OMNIMETER-V4")


def rows(n: int) -> list[tuple[Any, ...]]:
    """(id, account, serial, model, name, created_at, tags, attrs, simulated) for n devices."""
    out = []
    for i in range(1, n + 1):
        if i % 20 == 0:  # an adopted Shelly Gen1 plug: its own MQTT id
            mqtt_id = f"shellyplug-{i:06X}"
            attrs = {"protocol": "shelly-gen1", "mqtt_id": mqtt_id}
            out.append((i, 1 + i % 100, mqtt_id, "SHPLG-1", "d", 1.0, "[]", json.dumps(attrs),
                        False))  # fmt: skip
            continue
        attrs = {"twin_mqtt_id": f"chosen-{i}"} if i % 50 == 0 else {}
        out.append((i, 1 + i % 100, f"SN{i:08d}", MODELS[i % len(MODELS)], "d", 1.0, "[]",
                    json.dumps(attrs), True))  # fmt: skip
    return out


async def at_0008(url: str, n: int) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0008"))
            accounts = [{"id": a, "email": f"a{a}@x.io", "name": "A", "password_hash": "h",
                         "created_at": 1.0} for a in range(1, 101)]  # fmt: skip
            await conn.execute(sa.text("INSERT INTO accounts (id, email, name, password_hash,"
                                       " created_at) VALUES (:id, :email, :name,"
                                       " :password_hash, :created_at)"), accounts)  # fmt: skip
            keys = ("id", "account_id", "serial", "model", "name", "created_at", "tags",
                    "attrs", "simulated")  # fmt: skip
            sql = sa.text(f"INSERT INTO devices ({', '.join(keys)}) VALUES "
                          f"({', '.join(':' + k for k in keys)})")  # fmt: skip
            batch = rows(n)
            for k in range(0, n, 50_000):
                await conn.execute(sql, [dict(zip(keys, r, strict=True))
                                         for r in batch[k : k + 50_000]])  # fmt: skip
    finally:
        await engine.dispose()


async def timed(url: str, work: Callable[[sa.Connection], None]) -> float:
    engine = create_async_engine(async_url(url))
    try:
        t = time.perf_counter()
        async with engine.begin() as conn:
            await conn.run_sync(work)
        return time.perf_counter() - t
    finally:
        await engine.dispose()


def baseline(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE devices ADD COLUMN mqtt_id VARCHAR(64)"))
    conn.execute(sa.text("UPDATE devices SET mqtt_id = serial"))
    conn.execute(sa.text("CREATE UNIQUE INDEX uq_devices_mqtt_id ON devices (mqtt_id)"))


async def one(kind: str, n: int, tmp: Path) -> dict[str, Any]:
    made: list[str] = []
    urls = []
    for role in ("migration", "baseline"):
        if kind == "sqlite":
            urls.append(f"sqlite:///{tmp}/{role}.db")
        else:
            name = f"sg_bench_m9_{role}_{secrets.token_hex(3)}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            made.append(name)
            urls.append(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        for url in urls:
            await at_0008(url, n)
        migration = await timed(urls[0], lambda c: command.upgrade(alembic_config(c), "0009"))
        bare = await timed(urls[1], baseline)
        engine = create_async_engine(async_url(urls[0]))
        async with engine.connect() as conn:
            filled = (await conn.execute(sa.text(
                "SELECT count(mqtt_id) FROM devices"))).scalar_one()  # fmt: skip
        await engine.dispose()
        return {"database": kind, "devices": n, "with_mqtt_id": filled,
                "migration_s": round(migration, 2), "baseline_s": round(bare, 2),
                "ratio": round(migration / bare, 1)}  # fmt: skip
    finally:
        for name in made:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(one(args.database, args.devices, Path(tmp)))))


if __name__ == "__main__":
    main()
