"""Run the server (`serve`, `demo`) under uvicorn, and announce the demo once it answers."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import httpx
import uvicorn
from rich.console import Console

from switchgear.app import create_app
from switchgear.cli.banner import banner
from switchgear.core.model import Json
from switchgear.demo import credentials, seed, write_credentials
from switchgear.httpguard import Limits, guarded
from switchgear.runtime import Runtime
from switchgear.settings import Settings

log = logging.getLogger(__name__)


class PortInUse(SystemExit):
    """The port is taken: one line for the operator, exit status 1, nothing else done."""


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything opens the database (PortInUse if taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    # (proto 0 left Nagle on: a response written in two parts waited ~40 ms for an ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"switchgear: port {port} on {host} is already in use; "
                "stop what holds it or choose another with --port"
            ) from None
        raise PortInUse(f"switchgear: cannot listen on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings, *, demo: bool = False) -> None:
    """Serve until interrupted; with `demo`, seed or resume the demo and write its file."""
    sock = bind(settings.host, settings.port)
    state: dict[str, Any] = {}

    async def on_start(rt: Runtime) -> None:
        state["runtime"] = rt
        if demo:
            state["demo"] = await seed(rt)

    app = create_app(settings, on_start=on_start)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # logs.configure_logging set handlers and levels (text or JSON)
        access_log=False,  # switchgear.access writes one line a request, with its id
        server_header=False,  # a face names its server itself (the meter: "smart-MAC")
        lifespan="on",
        # open response streams (/sub, /ws, /api/v1/events) never end by themselves
        timeout_graceful_shutdown=3,
        **transport_options(settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # start-up failed: raise its error
            raise SystemExit(1)
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
    settings.port = port  # `--port 0`: links the faces write (Settings.base_url) name the real one
    base_url = settings.base_url
    console = Console(stderr=False)
    console.print(f"switchgear listening on {base_url}", highlight=False)
    if demo:
        await _announce(console, state["runtime"], state["demo"], base_url, settings)
    await task


def transport_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for TLS, keep-alive and the connection guard (httpguard)."""
    limits = Limits(
        max_connections=settings.max_connections,
        max_connections_per_client=settings.max_connections_per_client,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
    )
    options: dict[str, Any] = {
        "http": guarded(limits),
        "timeout_keep_alive": settings.keep_alive_s,
    }
    if settings.tls_certfile:
        options["ssl_certfile"] = settings.tls_certfile
        options["ssl_keyfile"] = settings.tls_keyfile
    return options


async def _announce(
    console: Console, rt: Runtime, demo: dict[str, Json], base_url: str, settings: Settings
) -> None:
    # the announcement checks the server answers; a self-signed certificate is fine here
    async with httpx.AsyncClient(base_url=base_url, timeout=10, verify=False) as client:
        (await client.get("/healthz")).raise_for_status()
    content = await credentials(rt, demo, base_url)
    path = settings.credentials_file or "./switchgear-demo.json"
    write_credentials(path, content)
    banner(console, content, path)
