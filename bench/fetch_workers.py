"""Benchmark: smart-plug `/provider/fetch` with `serve --workers 2` against `--workers 1`.

    python -m bench.fetch_workers [--seconds 10] [--connections 64] [--rounds 2]
                                  [--link mqtt://127.0.0.1:1883]

The same PostgreSQL database, broker and fleet process for every run: the scale-out demo
seeds a fresh database once (`demo --link ... --workers 1 --fleet-processes 1`), then one
`switchgear fleet` process serves its devices while `switchgear serve --workers N --fleet
external` is started and measured with wrk for N = 1 and N = 2, in turns (`--rounds`
times), so load from elsewhere on a shared machine falls on both alike. Printed: requests
a second of each run, and 2 workers as a ratio of 1 worker. Target: >= 1.4x on 2 cores.
Needs wrk, PostgreSQL (SWITCHGEAR_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/
postgres, to create and drop its database) and the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench import wrk

TARGET = 1.4
ADMIN = os.environ.get("SWITCHGEAR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _switchgear(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        cmd = [sys.executable, "-m", "switchgear", *args]
        env = {**os.environ, **(env or {})}
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _until(check: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {what} not within {seconds:.0f} s")


def seed(tmp: Path, database_url: str, link: str) -> dict[str, str]:
    """The smart-plug token and a plug's serial, from a scale-out demo run once."""
    creds = tmp / "creds.json"
    demo = _switchgear(["demo", "--port", str(_free_port()), "--link", link, "--workers", "1",
                        "--fleet-processes", "1", "--database-url", database_url,
                        "--credentials-file", str(creds), "--log-level", "warning"],
                       tmp / "demo.log")  # fmt: skip
    _until(creds.exists, "the demo's credentials file")
    _stop(demo)
    sp = json.loads(creds.read_text())["smartplug"]
    return {"token": sp["access_token"], "serial": sp["serials"][0]}


# one worker under the same supervisor as `--workers 2` (uvloop, the spawned worker): the
# fair baseline; plain `serve` runs one process on the standard asyncio loop
ONE_SUPERVISED = (
    "from switchgear.cli.workers import serve_workers; from switchgear.settings import "
    "Settings; from switchgear.logs import configure_logging; s = Settings(); "
    "configure_logging(s.log_level); serve_workers(s, 1)"
)


def measure(
    tmp: Path, database_url: str, link: str, kind: str, plug: dict[str, str],
    args: argparse.Namespace,
) -> wrk.Result:  # fmt: skip
    """`kind`: "serve" (one process), "1" (one supervised worker) or "2" (two workers)."""
    port = _free_port()
    log = tmp / f"serve-{kind}.log"
    if kind == "1":
        env = {"SWITCHGEAR_PORT": str(port), "SWITCHGEAR_LINK": link,
               "SWITCHGEAR_FLEET": "external", "SWITCHGEAR_DATABASE_URL": database_url,
               "SWITCHGEAR_LOG_LEVEL": "warning"}  # fmt: skip
        with log.open("ab") as out:
            cmd = [sys.executable, "-c", ONE_SUPERVISED]
            env = {**os.environ, **env}
            server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    else:
        workers = ["--workers", "2"] if kind == "2" else []
        server = _switchgear(["serve", *workers, "--port", str(port), "--link", link,
                              "--fleet", "external", "--database-url", database_url,
                              "--log-level", "warning"], log)  # fmt: skip
    expected = 2 if kind == "2" else 1
    url = f"http://127.0.0.1:{port}/provider/fetch"
    headers = {"Authorization": f"Bearer {plug['token']}"}
    body = json.dumps({"serial_number": plug["serial"]})
    try:

        def online() -> bool:
            seen = set()
            for _ in range(20):  # every worker answers with the plug online
                r = httpx.post(url, content=body, headers={**headers,
                               "Content-Type": "application/json"})  # fmt: skip
                if r.status_code != 200 or not r.json()["provider"]["online"]:
                    return False
                seen.add(httpx.get(f"http://127.0.0.1:{port}/healthz").headers.get(
                    "X-Switchgear-Worker"))  # fmt: skip
            return len(seen) >= expected

        _until(online, f"the server ({kind}) with the plug online")
        wrk.run(url, seconds=2, connections=args.connections, threads=1, headers=headers,
                body=body)  # warm-up  # fmt: skip
        return wrk.run(url, seconds=args.seconds, connections=args.connections, threads=1,
                       headers=headers, body=body)  # fmt: skip
    finally:
        _stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--link", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("bench: needs wrk (apt-get install wrk)")
    name = f"switchgear_bench_workers_{secrets.token_hex(4)}"
    database_url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            plug = seed(tmp, database_url, args.link)
            fleet = _switchgear(["fleet", "--shard", "0/1", "--log-level", "warning"],
                                tmp / "fleet.log", {"SWITCHGEAR_LINK": args.link,
                                "SWITCHGEAR_DATABASE_URL": database_url})  # fmt: skip
            try:
                print(f"/provider/fetch, wrk -t1 -c{args.connections} -d{args.seconds}s, "
                      f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")  # fmt: skip
                print(f"{'round':>5} {'serve rps':>10} {'1 worker rps':>13} "
                      f"{'2 workers rps':>14} {'2w/1w':>6} {'2w/serve':>9}")  # fmt: skip
                ratios, plain = [], []
                for i in range(args.rounds):
                    r = {k: measure(tmp, database_url, args.link, k, plug, args)
                         for k in ("serve", "1", "2")}  # fmt: skip
                    ratios.append(r["2"].rps / r["1"].rps)
                    plain.append(r["2"].rps / r["serve"].rps)
                    print(f"{i + 1:>5} {r['serve'].rps:>10.0f} {r['1'].rps:>13.0f} "
                          f"{r['2'].rps:>14.0f} {ratios[-1]:>5.2f}x {plain[-1]:>8.2f}x"
                          f"   (p99 ms {r['serve'].p99_ms:.1f} / {r['1'].p99_ms:.1f} / "
                          f"{r['2'].p99_ms:.1f}; errors "
                          f"{sum(x.errors for x in r.values())})")  # fmt: skip
                median = statistics.median(ratios)
                verdict = "meets" if median >= TARGET else "misses"
                print(f"median: 2 workers / 1 worker {median:.2f}x ({verdict} the {TARGET}x "
                      f"target), 2 workers / plain serve {statistics.median(plain):.2f}x; "
                      f"load after {os.getloadavg()[0]:.1f}")  # fmt: skip
            finally:
                _stop(fleet)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
