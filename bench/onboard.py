"""Fleet onboarding: bulk import of N devices, one more row at 100 and at N, boot and RSS.

    python -m bench.onboard [--devices 100000] [--database sqlite|postgresql] [--no-boot]
    python -m bench.onboard --boot-only sqlite:///path/to/fleet.db

Through the native API in process (httpx on the ASGI app, as the CLI's requests arrive):
a CSV of N simulated devices (plugs, strips, power controllers and meters in turn) is
posted in parts of 5,000 rows, each an import job read until it ends, as `switchgear
devices import` sends and follows it. Before and after,
one-row imports are timed (median of 50) with 100 and with N devices present (minutes
apart: `bench.onepost` measures that ratio side by side, on every face). Then the
server is stopped and `switchgear serve` is started on the same database: the seconds to
its first HTTP answer, its CPU seconds then and its resident memory; and in process, the
CPU seconds until `Runtime.start` returns, until every twin is up and until the boot's
reports are committed. PostgreSQL
(`SWITCHGEAR_TEST_PG`) gets a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.runtime import Runtime
from switchgear.settings import Settings

PG_ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
HEADER = "serial,model,name,tags\n"
PART = 5_000
KINDS = (
    ("SHPLG-1", "SPGB{i:08d}", "plug"),
    ("LG-MULTI-4", "LGMB{i:08d}", "strip"),
    ("power-controller-v10", "PC-BULK{i:08d}-001", "heater"),
    ("D101", "3{i:09d}", "meter"),
)


def row(i: int) -> str:
    model, serial, tag = KINDS[i % len(KINDS)]
    return f"{serial.format(i=i)},{model},{tag} {i},bench;{tag}\n"


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_row_ms(client: httpx.AsyncClient, h: dict[str, str], first: int) -> list[float]:
    """Median milliseconds, wall and CPU of this process, of 50 one-row imports (new
    serials from `first` on). CPU time is what the ratio compares: on a shared machine the
    wall time of a 10 ms request is mostly other processes' turns."""
    wall, cpu = [], []
    for k in range(50):
        body = HEADER + row(first + k)
        t0, c0 = time.perf_counter(), time.process_time()
        r = await client.post("/api/v1/devices:import", content=body, headers=h)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert r.json()["imported"] == 1, r.text
    return [round(statistics.median(wall), 2), round(statistics.median(cpu), 2)]


async def finished(
    client: httpx.AsyncClient, h: dict[str, str], r: httpx.Response
) -> dict[str, Any]:
    """The import's final report: the answer itself, or its job read until it ends (as
    `switchgear devices import` follows it)."""
    job: dict[str, Any] = r.json()
    while r.status_code == 202 and job["state"] not in ("done", "failed"):
        await asyncio.sleep(0.05)
        job = (await client.get(r.headers["location"], headers=h)).json()
    return job


async def import_all(url: str, devices: int) -> dict[str, object]:
    settings = Settings(database_url=url, speed=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("bulk@example.com", "Bulk", "a long password")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        h = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=600) as c:
            spare = 10_000_000  # serials of the one-row imports, apart from the file's
            await c.post("/api/v1/devices:import", content=HEADER + "".join(map(row, range(100))),
                         headers=h)  # fmt: skip
            at_100 = await one_row_ms(c, h, spare)
            t0, c0 = time.perf_counter(), time.process_time()
            for start in range(100, devices, PART):
                body = HEADER + "".join(map(row, range(start, min(start + PART, devices))))
                r = await c.post("/api/v1/devices:import", content=body, headers=h,
                                 params={"line_offset": start})  # fmt: skip
                job = await finished(c, h, r)
                assert job["state"] == "done" and not job["refused"], str(job)[:300]
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            at_n = await one_row_ms(c, h, spare + 100)
            end = min(100 + PART, devices)
            again0 = time.perf_counter()
            r = await c.post("/api/v1/devices:import",
                             content=HEADER + "".join(map(row, range(100, end))),
                             headers=h)  # fmt: skip
            job = await finished(c, h, r)
            again = time.perf_counter() - again0
            assert job["unchanged"] == end - 100, str(job)[:300]
        return {
            "devices": len(rt.engine),
            "import_seconds": round(took, 1),
            "import_cpu_seconds": round(cpu, 1),
            "import_per_device_ms": round(took * 1000 / max(devices - 100, 1), 3),
            "one_row_ms_wall_cpu_at_100": at_100,
            f"one_row_ms_wall_cpu_at_{devices}": at_n,
            "ratio_cpu": round(at_n[1] / at_100[1], 2),
            f"reimport_{PART}_unchanged_s": round(again, 2),
            "importer_rss_mib": round(rss_mib()),
            "importer_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ),
        }


async def boot_in_process(url: str) -> dict[str, object]:
    """`Runtime.start` on the database in this process: CPU seconds until it returns (the
    server would answer from then on), until every twin is up, and until the boot's
    reports are committed."""
    c0 = time.process_time()
    rt = await Runtime.start(Settings(database_url=url, speed=1))
    started = time.process_time() - c0
    try:
        late = [t for t in rt.tasks if t.get_name() == "fleet-boot"]  # the late twins
        await asyncio.gather(*late)
        booted = time.process_time() - c0
        await rt.journal.flush()
        durable = time.process_time() - c0
    finally:
        await rt.stop()
    return {"start_returns_cpu_s": round(started, 1), "all_twins_up_cpu_s": round(booted, 1),
            "boot_reports_durable_cpu_s": round(durable, 1)}  # fmt: skip


def cpu_s(pid: int) -> float:
    """User and system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def boot(url: str) -> dict[str, object]:
    """`switchgear serve` on the database: seconds (wall, and the server's CPU) to its first
    HTTP answer, and its RSS then; again once every twin is up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "switchgear", "serve", "--port", str(port), "--speed", "1",
           "--database-url", url, "--log-level", "info"]  # fmt: skip
    t0 = time.perf_counter()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the server, below)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/devices", timeout=5)  # any answer
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.perf_counter() - t0 > 1200:
                    raise RuntimeError("the server did not answer") from None
                time.sleep(0.05)
        took = time.perf_counter() - t0
        out = {"boot_to_first_answer_s": round(took, 1), "boot_cpu_s": round(cpu_s(proc.pid), 1),
               "server_rss_mib": round(rss_mib(proc.pid))}  # fmt: skip
        # then until the late twins are up: the server logs "fleet booted" (a fleet of no
        # more than the inline count logs nothing: it was up at the first answer)
        log.seek(0)
        started = re.search(rb"runtime started: (\d+) devices", log.read())
        if started and int(started.group(1)) > Settings().boot_inline_twins:
            while time.perf_counter() - t0 < 1800:
                log.seek(0)
                if b"fleet booted" in log.read():
                    break
                time.sleep(0.5)
        out.update({"all_up_s": round(time.perf_counter() - t0, 1),
                    "all_up_cpu_s": round(cpu_s(proc.pid), 1),
                    "server_rss_mib_all_up": round(rss_mib(proc.pid))})  # fmt: skip
        return out
    finally:
        proc.kill()
        proc.wait()
        log.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--no-boot", action="store_true")
    ap.add_argument("--boot-only", metavar="URL", help="only the boot figures, of this database")
    args = ap.parse_args()
    if args.boot_only:
        out0 = {**boot(args.boot_only), **await boot_in_process(args.boot_only)}
        print(json.dumps(out0, indent=2))
        return
    out: dict[str, object] = {"database": args.database}
    if args.database == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="switchgear-onboard-"))
        try:
            url = f"sqlite:///{folder / 'fleet.db'}"
            out.update(await import_all(url, args.devices))
            print(json.dumps(out), flush=True)
            if not args.no_boot:
                out.update(boot(url))
                out.update(await boot_in_process(url))
        finally:
            shutil.rmtree(folder)
    else:
        name = f"switchgear_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            out.update(await import_all(url, args.devices))
            print(json.dumps(out), flush=True)
            if not args.no_boot:
                out.update(boot(url))
                out.update(await boot_in_process(url))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
