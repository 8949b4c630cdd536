"""The scale-out demo as real processes: start it, find its children, stream commands."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_mqtt_devices import BROKER
from tests.e2e.proc import Demo, answering, free_port, launch

START_TIMEOUT_S = 90.0  # the machine is shared: a cold start of 2 + 2 processes
POLL_S = 0.05
LINK = f"mqtt://{BROKER[0]}:{BROKER[1]}"  # the machine's Mosquitto


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Bounded polling on the wall clock (real processes)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(POLL_S)


def _ppids() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie has exited
                out[int(entry)] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    """Every living process under `pid`."""
    ppids = _ppids()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in ppids.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    return pid in _ppids()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def fleet_pids(demo: Demo) -> list[int]:
    return [p for p in descendants(demo.proc.pid) if " fleet --shard " in cmdline(p)]


def worker_pids(demo: Demo) -> list[int]:
    return [p for p in descendants(demo.proc.pid) if "spawn_main" in cmdline(p)]


def start_scaleout(
    tmp: Path, database_url: str, link: str, workers: int = 2, fleet: int = 2
) -> Demo:
    """`switchgear demo --link ... --workers N --fleet-processes M` at speed 1; returns once
    its credentials file is written (every worker answers, the fleet is online)."""
    args = ["--port", str(free_port()), "--link", link, "--workers", str(workers),
            "--fleet-processes", str(fleet), "--database-url", database_url,
            "--log-level", "warning"]  # fmt: skip
    return answering(launch(tmp, args, "scaleout"), START_TIMEOUT_S, stop_all)


def stop_all(demo: Demo) -> None:
    """Ctrl-C, then kill -9 whatever is left (so a failing test leaves no process)."""
    children = descendants(demo.proc.pid)
    demo.stop()
    for pid in descendants(demo.proc.pid) | children:
        if alive(pid):
            os.kill(pid, 9)


@contextmanager
def scaleout(
    tmp: Path, database_url: str, link: str, workers: int = 2, fleet: int = 2
) -> Iterator[Demo]:
    demo = start_scaleout(tmp, database_url, link, workers, fleet)
    try:
        yield demo
    finally:
        stop_all(demo)


def native(demo: Demo, key: str = "account") -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.credentials[key]['token']}"}


def worker_of(base_url: str) -> str:
    """The pid of the worker that answered a fresh connection."""
    r = httpx.get(f"{base_url}/healthz", timeout=5)
    return r.headers["X-Switchgear-Worker"]


@dataclass
class Stream:
    """A client switching one device on and off as fast as it is answered, each request on a
    fresh connection (as many clients would), in a thread; it keeps going through errors."""

    base_url: str
    headers: dict[str, str]
    device_id: int
    acked: list[dict[str, Any]] = field(default_factory=list)  # 200 answers: done commands
    offline: int = 0  # 503 answers (the device offline)
    errors: int = 0  # no answer (a worker died) or another status
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Stream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def sent(self) -> int:
        return len(self.acked) + self.offline + self.errors

    def _run(self) -> None:
        path = f"/api/v1/devices/{self.device_id}/channels/0/switch"
        on = True
        while not self._stop.is_set():
            action = "on" if on else "off"
            try:
                r = httpx.post(self.base_url + path, json={"action": action},
                               headers=self.headers, timeout=15)  # fmt: skip
            except httpx.HTTPError:
                self.errors += 1
                time.sleep(0.05)
                continue
            if r.status_code == 200 and r.json()["state"] == "done":
                self.acked.append({**r.json(), "action": action})
                on = not on
            elif r.status_code == 503:
                self.offline += 1
                time.sleep(0.05)
            else:
                self.errors += 1
                time.sleep(0.05)


def check_acknowledged(demo: Demo, stream: Stream) -> None:
    """Every acknowledged command is done on every worker's reading of the database, and the
    device's history holds a relay record of each state it was switched to."""
    assert stream.acked, "no command was acknowledged"
    with httpx.Client(base_url=demo.base_url, headers=native(demo), timeout=15) as client:
        for cmd in stream.acked:
            r = client.get(f"/api/v1/commands/{cmd['id']}")
            assert r.status_code == 200 and r.json()["state"] == "done", (cmd, r.text)
        history = client.get(f"/api/v1/devices/{stream.device_id}/history?limit=5000").json()
    relays = [s for s in history["statuses"] if s["kind"] == "relay" and s["reason"] == "api"]
    # each acknowledged command changed the relay (on, off, on, ...) and left its record;
    # only one a request without an answer switched already may have changed nothing
    assert len(relays) >= len(stream.acked) - stream.errors


def require_mosquitto() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto")
                                         .exists() else None)  # fmt: skip
    if path is None:
        pytest.skip("no mosquitto binary to run a broker of the test's own")
    return path
