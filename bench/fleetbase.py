"""What bench.fleetscale's runs share: the run's broker, fleet processes and database,
processes' CPU and RSS, waits."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]


@dataclass
class Run:
    """The run's broker: its own Mosquitto or `--link` (set by bench.fleetscale's main)."""

    broker: tuple[str, int] = ("127.0.0.1", 1883)
    link: str = "mqtt://127.0.0.1:1883"
    broker_pid: int | None = None  # the run's own Mosquitto: its CPU in the FFR burst


RUN = Run()
ROOT = Path(__file__).resolve().parent.parent
BROKER_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 1000
set_tcp_nodelay {nodelay}
"""
PG_ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TICK = os.sysconf("SC_CLK_TCK")

# --- processes --------------------------------------------------------------------


def own_broker(tmp: Path, nodelay: bool = True) -> tuple[subprocess.Popen[bytes], int]:
    """A Mosquitto for this run, with fleet settings, on a free loopback port."""
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if exe is None:
        sys.exit("mosquitto is not installed (Debian package: mosquitto), or pass --link")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    conf = tmp / "mosquitto.conf"
    conf.write_text(BROKER_CONF.format(port=port, nodelay=str(nodelay).lower()))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def percentiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)

    def q(p: float) -> float:
        return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 2)

    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99), "max_ms": q(1.0)}


async def until(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll (bounded) until `check()`; the wall seconds it took."""
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > seconds:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)
    return time.perf_counter() - t0


def arun(coro: Any) -> Any:
    """Run on uvloop, as uvicorn runs a server and `switchgear fleet` its devices."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


PROFILE = os.environ.get("FLEETSCALE_PROFILE")  # a folder: cProfile the fleets and the FFR


def fleet_proc(url: str, shard: str) -> subprocess.Popen[bytes]:
    main = ["bench.gcwatch" if os.environ.get("FLEETSCALE_GCWATCH") else "switchgear"]
    if PROFILE:  # the commands and the FFR burst only (signalled: `profiling`)
        main = ["bench.fleetprofile", PROFILE, f"fleet-{shard.replace('/', 'of')}"]
    cmd = [sys.executable, "-m", *main, "fleet", "--link",
           RUN.link, "--database-url", url, "--shard", shard, "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT)


def profiling(pids: list[int], on: bool) -> None:
    """Start or write the fleet processes' profiles (FLEETSCALE_PROFILE)."""
    for pid in pids if PROFILE else ():
        os.kill(pid, signal.SIGUSR1 if on else signal.SIGUSR2)
