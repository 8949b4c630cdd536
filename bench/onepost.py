"""One more device at N vs at 100, side by side: two `switchgear serve`, requests alternating.

    python -m bench.onepost [--devices 100000] [--small 100] [--rounds 100]
                            [--database sqlite|postgresql] [--restart] [--broker mqtt://...]

Two servers (`switchgear serve --speed 0 --link mqtt://...`, each on its own database and
a private Mosquitto unless `--broker` names one) are filled over HTTP with bulk imports:
one with `--small` devices, one with `--devices`, one row in ten an adopted Shelly (the
rest simulated plugs, strips, power controllers and meters in turn). Then, round after
round, each of the ways a user adds ONE device goes to both servers in turn (A B, then
B A): the native adoption `POST /api/v1/devices`, a one-row
`POST /api/v1/devices:import` and the power-controller face's `POST /v1/devices`. For
each request: the client's wall time and the server's CPU time over the request (the sum
of its threads' run time from /proc/PID/task/*/schedstat, nanoseconds); medians, p90 and
the ratio big/small, and each server's whole CPU over the rounds per request (what a
request leaves for after its answer is in it). `--restart` restarts both servers on their
databases before the rounds (every twin booted and the heap frozen, as after a restart);
without it they are measured as the import left them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.onboard import PART, PG_ADMIN, row
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.runtime import Runtime
from switchgear.settings import Settings

HEADER = "serial,model,name,tags,protocol,address,pin\n"
EMAIL, PASSWORD = "onepost@example.com", "a long password"
ADOPTED_EVERY = 10  # one row in ten is an adopted Shelly


def fleet_row(i: int) -> str:
    """Row i of the fleet: an adopted Shelly one time in ten, else a simulated device."""
    if i % ADOPTED_EVERY == ADOPTED_EVERY - 1:
        proto = ("shelly-gen1", "shelly-gen2")[(i // ADOPTED_EVERY) % 2]
        return f",,shelly {i},bench;shelly,{proto},shellybench-{i:08d},\n"
    return row(i).rstrip("\n") + ",,,\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


def cpu_s(pid: int) -> float:
    """User and system CPU seconds of the process, ended threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    """One `switchgear serve` on its own database, with its token and its figures."""

    label: str
    url: str
    devices: int
    broker: str
    token: str = ""
    pc_token: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def start(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / f"{self.label}.log"
        cmd = [sys.executable, "-m", "switchgear", "serve", "--port", str(self.port),
               "--speed", "0", "--database-url", self.url, "--link", self.broker,
               "--log-level", "info"]  # fmt: skip
        env = {**os.environ, "SWITCHGEAR_REGISTRATIONS_PER_HOUR": "100000000"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, env=env)
        t0 = time.perf_counter()
        while True:
            try:
                httpx.get(f"{self.base}/api/v1/tokens", timeout=5)  # any answer
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"server {self.label} did not answer") from None
                time.sleep(0.1)

    def booted(self) -> None:
        """Wait until the late twins are up (the server logs "fleet booted")."""
        assert self.log is not None
        started = re.findall(r"runtime started: (\d+) devices", self.last_start())
        if not started or int(started[0]) <= Settings().boot_inline_twins:
            return
        t0 = time.perf_counter()
        while "fleet booted" not in self.last_start() and time.perf_counter() - t0 < 1200:
            time.sleep(0.5)

    def last_start(self) -> str:
        """The log since the server's last start."""
        assert self.log is not None
        text = self.log.read_text(errors="replace")
        return text[text.rfind("runtime started:") :]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def prepare(url: str) -> str:
    """The database's first account (the operator) and a native token for it."""
    rt = await Runtime.start(Settings(database_url=url, speed=0))
    try:
        account = await rt.auth.create_account(EMAIL, "One post", PASSWORD)
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 30 * 86_400.0)
        return token
    finally:
        await rt.stop()


def fill(s: Server, c: httpx.Client) -> float:
    """Import the server's fleet in parts of PART rows, each job read until it ends; the
    wall seconds it took."""
    h = {"Authorization": f"Bearer {s.token}", "Content-Type": "text/csv"}
    t0 = time.perf_counter()
    for start in range(0, s.devices, PART):
        body = HEADER + "".join(map(fleet_row, range(start, min(start + PART, s.devices))))
        r = c.post(f"{s.base}/api/v1/devices:import", content=body, headers=h,
                   params={"line_offset": start})  # fmt: skip
        job = r.json()
        while r.status_code == 202 and job["state"] not in ("done", "failed"):
            time.sleep(0.2)
            job = c.get(f"{s.base}{r.headers['location']}", headers=h).json()
        assert not job["refused"] and job.get("state", "done") == "done", str(job)[:300]
    return time.perf_counter() - t0


def sign_in_pc(s: Server, c: httpx.Client) -> None:
    body = {"user": {"email": EMAIL, "password": PASSWORD}}
    r = c.post(f"{s.base}/v1/signin", json=body)
    assert r.status_code == 200, r.text
    s.pc_token = r.json()["token"]


Request = Callable[[Server, httpx.Client, int], httpx.Response]


def adopt(s: Server, c: httpx.Client, k: int) -> httpx.Response:
    body = {"protocol": "shelly-gen1", "mqtt_id": f"shellyone-{k:06d}", "name": f"one {k}"}
    return c.post(f"{s.base}/api/v1/devices", json=body, headers=_native(s))


def import_one(s: Server, c: httpx.Client, k: int) -> httpx.Response:
    body = f"serial,model,name,tags\nSPONE{k:08d},SHPLG-1,one {k},bench\n"
    return c.post(f"{s.base}/api/v1/devices:import", content=body,
                  headers={**_native(s), "Content-Type": "text/csv"})  # fmt: skip


def pc_add(s: Server, c: httpx.Client, k: int) -> httpx.Response:
    body = {"sn": f"PC-ONE{k:08d}-001", "country": "FI"}
    return c.post(f"{s.base}/v1/devices", json=body,
                  headers={"Authorization": f"Bearer {s.pc_token}"})  # fmt: skip


def _native(s: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.token}"}


ENDPOINTS: dict[str, tuple[Request, int]] = {  # name: (request, its success status)
    "POST /api/v1/devices (adopt a Shelly)": (adopt, 201),
    "POST /api/v1/devices:import (one row)": (import_one, 200),
    "POST /v1/devices (power controller)": (pc_add, 200),
}


def measure(servers: tuple[Server, Server], c: httpx.Client, rounds: int) -> dict[str, Any]:
    """ABAB...: each round sends each endpoint's request to both servers in turn."""
    before = {s.label: cpu_s(s.pid) for s in servers}
    t0 = time.perf_counter()
    for k in range(rounds):
        order = servers if k % 2 == 0 else servers[::-1]
        for name, (send, ok) in ENDPOINTS.items():
            for s in order:
                w0, c0 = time.perf_counter(), cpu_ns(s.pid)
                r = send(s, c, k)
                c1, w1 = cpu_ns(s.pid), time.perf_counter()
                assert r.status_code == ok, f"{name} on {s.label}: {r.status_code} {r.text}"
                s.wall.setdefault(name, []).append((w1 - w0) * 1000)
                s.cpu.setdefault(name, []).append((c1 - c0) / 1e6)
    took = time.perf_counter() - t0
    per_request = {
        s.label: round((cpu_s(s.pid) - before[s.label]) * 1000 / (rounds * len(ENDPOINTS)), 2)
        for s in servers
    }
    return {"rounds_wall_s": round(took, 1), "server_cpu_ms_per_request_all_in": per_request}


def p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def summary(small: Server, big: Server) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ENDPOINTS:
        row_: dict[str, Any] = {}
        for s in (small, big):
            row_[s.label] = {
                "wall_ms_p50": p(s.wall[name], 50), "wall_ms_p90": p(s.wall[name], 90),
                "cpu_ms_p50": p(s.cpu[name], 50), "cpu_ms_p90": p(s.cpu[name], 90),
                "cpu_ms_mean": round(statistics.fmean(s.cpu[name]), 2),
            }  # fmt: skip
        a, b = row_[small.label], row_[big.label]
        row_["ratio_cpu_p50"] = round(b["cpu_ms_p50"] / a["cpu_ms_p50"], 2)
        row_["ratio_cpu_p90"] = round(b["cpu_ms_p90"] / a["cpu_ms_p90"], 2)
        row_["ratio_cpu_mean"] = round(b["cpu_ms_mean"] / a["cpu_ms_mean"], 2)
        row_["ratio_wall_p50"] = round(b["wall_ms_p50"] / a["wall_ms_p50"], 2)
        out[name] = row_
    return out


class Databases:
    """A database per server: SQLite files in a folder, or PostgreSQL databases dropped at
    the end."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder, self.made = kind, folder, list[str]()

    async def new(self, label: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / (label + '.db')}"
        name = f"switchgear_onepost_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.made.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    async def drop(self) -> None:
        if not self.made:
            return
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            for name in self.made:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def private_broker(folder: Path, stack: ExitStack) -> str:
    """A Mosquitto of this run's own on a free loopback port, stopped at the end."""
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    stack.callback(proc.wait)
    stack.callback(proc.kill)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"mqtt://127.0.0.1:{port}"
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--broker", help="mqtt://host:port (default: a private Mosquitto)")
    ap.add_argument("--restart", action="store_true", help="restart both servers first")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="switchgear-onepost-"))
    dbs = Databases(args.database, folder)
    out: dict[str, Any] = {"database": args.database, "rounds": args.rounds,
                           "load_before": os.getloadavg()[0]}  # fmt: skip
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder)
        broker = args.broker or private_broker(folder, stack)
        small = Server(f"at_{args.small}", asyncio.run(dbs.new("small")), args.small, broker)
        big = Server(f"at_{args.devices}", asyncio.run(dbs.new("big")), args.devices, broker)
        try:
            with httpx.Client(timeout=600) as c:
                for s in (small, big):
                    s.token = asyncio.run(prepare(s.url))
                    s.start(folder)
                    out[f"fill_{s.label}_s"] = round(fill(s, c), 1)
                    sign_in_pc(s, c)
                if args.restart:
                    for s in (small, big):
                        s.stop()
                        s.start(folder)
                        s.booted()
                out["rss_mib"] = {s.label: round(rss_mib(s.pid)) for s in (small, big)}
                time.sleep(2.0)  # the import's last commits and reports settle
                out.update(measure((small, big), c, args.rounds))
                out["load_after"] = os.getloadavg()[0]
                out["endpoints"] = summary(small, big)
        finally:
            small.stop()
            big.stop()
            asyncio.run(dbs.drop())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
