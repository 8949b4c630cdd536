"""The scale-out demo: `demo --link mqtt://... --workers N --fleet-processes M`.

The same accounts, fleet and credentials file as the embedded demo, behind N API workers
sharing the port (cli/workers.py) and M `switchgear fleet --shard i/M` processes whose
twins are MQTT devices on the broker. The demo is seeded (or resumed) first in this
process with its twins in-process; it then stops them, and the fleet processes boot them
from their NVRAM, as after a power cut. Fleet processes that die are reported and started
again; Ctrl-C (SIGINT or SIGTERM) stops every process the demo started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
from rich.console import Console

from switchgear.cli import workers
from switchgear.cli.banner import banner
from switchgear.cli.server import bind
from switchgear.core.model import Json
from switchgear.demo import FLEET, credentials, seed, write_credentials
from switchgear.health import WORKER_HEADER
from switchgear.runtime import Runtime
from switchgear.settings import Settings

log = logging.getLogger(__name__)

ONLINE_TIMEOUT_S = 60.0  # the fleet processes boot every demo device within this
STOP_TIMEOUT_S = 15.0  # a child that has not stopped by then is killed
RESTART_BACKOFF_S = (0.5, 10.0)  # a fleet process that keeps dying is started less often


async def prepare(settings: Settings) -> tuple[dict[str, Json], bool]:
    """Seed or resume the demo with its twins in-process; the credentials file's content,
    and whether the demo was seeded just now."""
    local = settings.model_copy(update={"fleet": "in-process", "link": "memory"})
    rt = await Runtime.start(local)
    try:
        fresh = not isinstance(await rt.store.meta("demo"), dict)
        demo = await seed(rt)
        content = await credentials(rt, demo, settings.base_url)
    finally:
        await rt.stop()
    await workers.prepare(settings)  # the shared clock anchor, after the in-process run
    return content, fresh


class FleetProcesses:
    """The demo's `switchgear fleet --shard i/M` children: started, watched, restarted and
    stopped. Settings reach them in the environment, never on their command line."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watcher, name="fleet-watch", daemon=True)

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SWITCHGEAR_DATABASE_URL": self.settings.database_url,
            "SWITCHGEAR_LINK": self.settings.link,
            "SWITCHGEAR_PUSH3_GATEWAY_DELAY_S": str(self.settings.push3_gateway_delay_s),
        }
        cmd = [sys.executable, "-m", "switchgear", "fleet", "--shard", f"{i}/{self.count}",
               "--log-level", self.settings.log_level]  # fmt: skip
        # its own session: a Ctrl-C at the terminal reaches the demo, which stops it once
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        log.info("fleet process %d/%d started (pid %d)", i, self.count, proc.pid)
        return proc

    def start(self) -> None:
        self.procs = [self._spawn(i) for i in range(self.count)]
        self._watch.start()

    def _watcher(self) -> None:
        started = [time.monotonic()] * self.count
        backoff = [RESTART_BACKOFF_S[0]] * self.count
        due: list[float | None] = [None] * self.count
        while not self._stop.wait(0.2):
            for i, proc in enumerate(self.procs):
                now = time.monotonic()
                if due[i] is None and proc.poll() is not None:
                    quick = now - started[i] < 5.0
                    backoff[i] = (
                        min(backoff[i] * 2, RESTART_BACKOFF_S[1]) if quick else RESTART_BACKOFF_S[0]
                    )
                    log.warning("fleet process %d/%d (pid %d) exited (%s); starting it again",
                                i, self.count, proc.pid, proc.returncode)  # fmt: skip
                    due[i] = now + backoff[i]
                when = due[i]
                if when is not None and now >= when and not self._stop.is_set():
                    self.procs[i], started[i], due[i] = self._spawn(i), now, None

    def stop(self) -> None:
        """SIGTERM to each (its devices say offline themselves), then wait; kill stragglers."""
        self._stop.set()
        if self._watch.is_alive():
            self._watch.join()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _each(client: httpx.Client, content: dict[str, Json]) -> list[tuple[str, list[Any]]]:
    """Each demo account's token and its devices as the native API lists them."""
    out = []
    for key in ("account", "other_account"):
        token = str(content[key]["token"])
        r = client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        out.append((token, list(r.json())))
    return out


def wait_ready(
    client: httpx.Client, content: dict[str, Json], workers_n: int, stop: threading.Event
) -> bool:
    """Every worker answers and shows every demo device online (bounded)."""
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    pids: set[str] = set()
    streak = 0  # consecutive answers (from any worker) with the whole fleet online
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with httpx.Client(base_url=str(client.base_url), verify=False, timeout=5) as fresh:
                pids.add(fresh.get("/healthz").headers.get(WORKER_HEADER, ""))
                listed = _each(fresh, content)
            online = all(d["online"] for _t, devices in listed for d in devices)
        except httpx.HTTPError:
            online = False
        streak = streak + 1 if online else 0
        if len(pids) >= workers_n and streak >= 2 * workers_n:
            return True
        stop.wait(0.1 if online else 0.3)
    return False


def restore_relays(client: httpx.Client, content: dict[str, Json]) -> None:
    """A first start switches on what the embedded demo has on: the fleet processes booted
    the twins from NVRAM as after a power cut, and a relay whose power-on state is `off`
    came up off."""
    wanted = {(row.model, row.name): row.switched_on for row in FLEET if row.switched_on}
    for token, devices in _each(client, content):
        for d in devices:
            for channel in wanted.get((d["model"], d["name"]), ()):
                r = client.post(
                    f"/api/v1/devices/{d['id']}/channels/{channel}/switch",
                    json={"action": "on"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if r.status_code != 200:
                    log.warning("demo: %s channel %d stayed off: %s", d["name"], channel, r.text)


def run(settings: Settings, workers_n: int, fleet_n: int) -> None:
    """The scale-out demo, until SIGINT/SIGTERM."""
    sock = bind(settings.host, settings.port)
    settings.port = sock.getsockname()[1]
    content, fresh = asyncio.run(prepare(settings))
    fleet = FleetProcesses(settings, fleet_n)

    def ready(stop: threading.Event) -> None:
        with httpx.Client(base_url=settings.base_url, verify=False, timeout=15) as client:
            if not wait_ready(client, content, workers_n, stop):
                if stop.is_set():
                    return
                log.warning("demo: not every device came online in %.0f s", ONLINE_TIMEOUT_S)
            if fresh:
                restore_relays(client, content)
        path = settings.credentials_file or "./switchgear-demo.json"
        write_credentials(path, content)
        console = Console()
        banner(console, content, path)
        console.print(
            f"Scale-out: {workers_n} API workers, {fleet_n} fleet processes, "
            f"broker {settings.link}",
            highlight=False,
        )

    fleet.start()
    try:
        workers.run(settings, sock, workers_n, on_ready=ready)
    finally:
        log.info("stopping the fleet processes")
        fleet.stop()
        log.info("demo stopped")
