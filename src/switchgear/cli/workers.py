"""`serve --workers N`: N API worker processes on one listening socket, under uvicorn's
own supervisor (`uvicorn.supervisors.Multiprocess`), which restarts a worker that dies.

The parent binds the socket, prepares the database once (migrations, the signing key,
the shared clock anchor: things N workers starting at once would race to create), then
hands the socket to the supervisor. Each worker is a spawned process: it receives the
settings pickled through multiprocessing's pipe (never on a command line `ps` shows),
builds the app from them, and serves every face.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import httpx
import uvicorn
from rich.console import Console
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from switchgear.app import create_app
from switchgear.auth.service import secret_key
from switchgear.cli.server import bind, transport_options
from switchgear.core.anchor import MANUAL_REFUSED, server_clock
from switchgear.links.broker import is_broker_link
from switchgear.logs import configure_logging
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import open_store

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
# a worker answers the supervisor's ping from a thread once it has imported switchgear,
# which takes seconds on a loaded machine: uvicorn's 5 s made it kill workers still starting
HEALTHCHECK_TIMEOUT_S = 30


def postgres(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (any driver)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def refusal(settings: Settings, processes: int) -> str | None:
    """Why this deployment cannot run `processes` server-side processes, in one line."""
    if processes > 1 and settings.speed <= 0:
        return f"switchgear: {MANUAL_REFUSED}"
    if processes > 1 and not is_broker_link(settings.link):
        return (
            "switchgear: --workers above 1 needs --link mqtt://host:port "
            "(the workers reach the devices through the broker)"
        )
    if processes > 1 and not postgres(settings.database_url):
        return (
            "switchgear: --workers above 1 needs a PostgreSQL --database-url "
            "(postgresql://...: the workers share one database)"
        )
    return None


async def prepare(settings: Settings) -> None:
    """What must exist once before N workers open the database: its schema, the signing
    key and the shared clock anchor."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        await secret_key(store, settings.secret_key)
        stored = await store.meta("clock")
        start = max(time.time(), float(stored or 0.0))
        await server_clock(store, start, settings.speed)
    finally:
        await store.close()


class WorkerApp:
    """The ASGI app factory each worker calls; picklable (it carries only the settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self) -> Starlette:
        return create_app(self.settings, on_start=self._ready)

    async def _ready(self, rt: Runtime) -> None:
        log.info("API worker %d serving", os.getpid())


class WorkerConfig(uvicorn.Config):
    """uvicorn's config for a worker, built again in each worker from the settings: the
    connection guard's protocol class (httpguard) is made there, as it cannot be pickled."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings  # before super(): its __init__ configures logging
        options = transport_options(settings)
        options.pop("http")
        super().__init__(
            WorkerApp(settings),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=None,
            access_log=False,  # switchgear.access writes one line a request
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
            **options,
        )

    def configure_logging(self) -> None:
        super().configure_logging()  # (access_log=False: uvicorn's access lines off)
        configure_logging(self.settings.log_level, self.settings.log_format)

    def load(self) -> None:
        if not self.loaded:
            self.http = transport_options(self.settings)["http"]
        super().load()


class Supervisor(Multiprocess):
    """uvicorn's supervisor, saying (at warning) when a worker died and is replaced."""

    failed = False  # a worker could not start: the whole server stops

    def keep_subprocess_alive(self) -> None:
        # said after the check (a worker may die while it runs): each one replaced in it
        before = list(self.processes)
        super().keep_subprocess_alive()
        for old, now in zip(before, self.processes, strict=False):
            if old.exitcode == STARTUP_FAILURE:
                self.failed = True
            elif now is not old:
                log.warning("API worker %s exited (%s); starting another", old.pid, old.exitcode)


def wait_answering(base_url: str, stop: threading.Event, timeout_s: float) -> bool:
    """Poll /healthz until a worker answers (False if stopped or timed out first)."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2, verify=False).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.1)
    return False


def run(
    settings: Settings,
    sock: socket.socket,
    workers: int,
    on_ready: Callable[[threading.Event], None] | None = None,
) -> None:
    """Serve with `workers` processes until SIGINT/SIGTERM; `on_ready` runs (in a thread)
    once a worker answers, with the event that says the server is stopping."""
    supervisor = Supervisor(WorkerConfig(settings, workers), [sock])

    def announce() -> None:
        if not wait_answering(settings.base_url, supervisor.should_exit, READY_TIMEOUT_S):
            return
        Console().print(
            f"switchgear listening on {settings.base_url} ({workers} API workers)",
            highlight=False,
        )
        if on_ready is not None:
            try:
                on_ready(supervisor.should_exit)
            except Exception:
                log.exception("start-up announcement failed")

    threading.Thread(target=announce, name="announce", daemon=True).start()
    supervisor.run()
    if supervisor.failed:
        raise SystemExit("switchgear: an API worker could not start (its log says why)")


def serve_workers(settings: Settings, workers: int) -> None:
    """`switchgear serve --workers N`."""
    sock = bind(settings.host, settings.port)
    settings.port = sock.getsockname()[1]  # `--port 0`: the workers name the real one
    asyncio.run(prepare(settings))
    run(settings, sock, workers)
