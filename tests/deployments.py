"""The deployments the face suites run on: embedded (in-process) and scale-out.

Embedded is the app as the suites always had it: an in-memory store, in-process twins, a
manual clock. Scale-out is the app with `fleet=external` on a fresh PostgreSQL schema and
the machine's Mosquitto, its simulated devices run by a FleetNode as MQTT clients, and the
clock at speed 1 (a manual clock is refused with an external fleet). A suite swaps the
conftest's `world` for this module's to run on both; a test that moves the manual clock is
marked `embedded_only` and skips on scale-out with its reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from switchgear.app import create_app
from switchgear.links.fleetnode import FleetNode
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import BROKER, SECRET, require_broker, until
from tests.conftest import World, world_on
from tests.storage.conftest import empty_schema

EMBEDDED = "embedded"
SCALE_OUT = "scale-out"
LINK = f"mqtt://{BROKER[0]}:{BROKER[1]}"
SETTLE_S = 20.0  # a fleet device's first report over the broker, on a loaded machine

SHAPES = [EMBEDDED, pytest.param(SCALE_OUT, marks=[pytest.mark.mqtt, pytest.mark.postgres])]


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
        """Wait until every simulated device is on line (at once for in-process twins)."""
        if self.node is None:
            return
        rt = self.rt

        def online() -> bool:
            devices = [d for d in rt.engine.all_devices() if d.simulated]
            return all(rt.engine.shadow(d.id).online for d in devices)

        await until(online, SETTLE_S)
        await rt.journal.flush()  # their connection records too, before a test reads history


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
    require_broker()
    url: str = request.getfixturevalue("pg_database")
    await empty_schema(url)
    app = create_app(Settings(**{"database_url": url, "speed": 1, "secret_key": SECRET,
                                 "link": LINK, "fleet": "external", **settings}))  # fmt: skip
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        await until(lambda: rt.fleet_link is not None and rt.fleet_link.transport.connected)
        node = FleetNode(open_store(url), *BROKER)
        await node.start()
        try:
            yield Deployment(shape, app, node)
        finally:
            await node.stop()


@pytest.fixture(params=SHAPES)
async def on_every_deployment(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """The conftest's two accounts and their devices, on each deployment."""
    async with deployed(request) as d, world_on(d.app, d.shape, d.settle) as w:
        yield w
