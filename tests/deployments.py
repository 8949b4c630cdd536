"""The deployments the face suites run on: embedded (in-process) and scale-out.

Embedded is the app as the suites always had it: an in-memory store, in-process twins, a
manual clock. Scale-out is the app with `fleet=external` on a fresh PostgreSQL schema and
a Mosquitto broker (see `broker`), its simulated devices run by a FleetNode as MQTT
clients, and the clock at speed 1 (a manual clock is refused with an external fleet). A
suite swaps the conftest's `world` for this module's to run on both; a test that moves
the manual clock is marked `embedded_only` and skips on scale-out with its reason.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from fastapi import FastAPI

from switchgear.app import create_app
from switchgear.core.model import Device
from switchgear.links import twinwire
from switchgear.links.fleetnode import FleetNode
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import BROKER, SECRET, require_broker, until
from tests.conftest import World, world_on
from tests.storage.conftest import empty_schema

EMBEDDED = "embedded"
SCALE_OUT = "scale-out"
TEARDOWN_S = 60.0
SETTLE_S = 20.0  # a fleet device's first report over the broker, on a loaded machine

SHAPES = [EMBEDDED, pytest.param(SCALE_OUT, marks=[pytest.mark.mqtt, pytest.mark.postgres])]


_private: list[tuple[str, int]] = []


def broker() -> tuple[str, int]:
    """The broker the scale-out deployment uses: a Mosquitto of this test process on a free
    loopback port when the binary is there, else the machine's at 127.0.0.1:1883.

    The suites' devices have fixed serials, hence fixed MQTT client ids: on a shared broker
    two test runs at once would take each other's sessions over. A private broker keeps
    every run to itself; it is started once and stopped when the process exits.
    """
    if _private:
        return _private[0]
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists(
        "/usr/sbin/mosquitto") else None)  # fmt: skip
    if exe is None:
        require_broker()
        return BROKER
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = Path(tempfile.mkdtemp(prefix="switchgear-broker-")) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    atexit.register(_stop, proc)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"a private Mosquitto ({exe}) did not start on port {port}")
            time.sleep(0.05)  # polling a starting process: wall time, bounded above
    _private.append(("127.0.0.1", port))
    return _private[0]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


@dataclass
class Deployment:
    """A started app in one shape, and the fleet serving it (scale-out)."""

    shape: str
    app: FastAPI
    node: FleetNode | None = None

    @property
    def rt(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    async def settle(self) -> None:
        """Wait until every simulated device is on line and what it reported is durable (at
        once for in-process twins)."""
        if self.node is None:
            return
        rt = self.rt

        def online() -> bool:
            devices = [d for d in rt.engine.all_devices() if d.simulated]
            return all(rt.engine.shadow(d.id).online for d in devices)

        await until(online, SETTLE_S)
        await rt.journal.flush()


@asynccontextmanager
async def deployed(request: pytest.FixtureRequest, **settings: Any) -> AsyncIterator[Deployment]:
    """The app started in the shape `request.param` names, with these settings on top."""
    shape: str = request.param
    if shape == EMBEDDED:
        app = create_app(Settings(**{"database_url": "memory://", "speed": 0,
                                     "secret_key": SECRET, **settings}))  # fmt: skip
        async with app.router.lifespan_context(app):
            yield Deployment(shape, app)
        return
    only = request.node.get_closest_marker("embedded_only")
    if only is not None:
        pytest.skip(f"embedded only: {only.args[0]}")
    host, port = broker()
    url: str = request.getfixturevalue("pg_database")
    await empty_schema(url)
    link = f"mqtt://{host}:{port}"
    app = create_app(Settings(**{"database_url": url, "speed": 1, "secret_key": SECRET,
                                 "link": link, "fleet": "external", **settings}))  # fmt: skip
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        await until(lambda: rt.fleet_link is not None and rt.fleet_link.transport.connected)
        node = FleetNode(open_store(url), host, port)
        await node.start()
        try:
            yield Deployment(shape, app, node)
        finally:
            async with asyncio.timeout(TEARDOWN_S):  # a stuck stop fails loudly, not forever
                await node.stop()
                await _forget((host, port), (d for d in rt.engine.all_devices() if d.simulated))


async def _forget(at: tuple[str, int], devices: Iterable[Device]) -> None:
    """Clear the retained `online` flags the devices leave on the shared broker: the next
    deployment's devices have the same ids, and a stale `false` would make its server
    record a return to the network during a test."""
    me = f"switchgear-test-{secrets.token_hex(6)}"
    async with aiomqtt.Client(*at, identifier=me) as client:
        for d in devices:
            await client.publish(twinwire.online_topic(d), b"", qos=1, retain=True)


@pytest.fixture(params=SHAPES)
async def on_every_deployment(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """The conftest's two accounts and their devices, on each deployment."""
    async with deployed(request) as d, world_on(d.app, d.shape, d.settle) as w:
        yield w
