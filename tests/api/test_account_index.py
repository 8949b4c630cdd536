"""An account's devices are found by its own index, and the device gauge is kept, not walked.

Counted, not timed (as tests/api/test_registration_scale.py): the lines of switchgear's
own code that listing a small tenant's devices runs with 40 and with 800 devices of
another account present. A scan over the fleet runs its lines once a device.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.metrics import render
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_registration_scale import LARGE, SECRET, SMALL, Steps
from tests.conftest import World

TENANT_DEVICES = 5


class Server:
    """A started app: a crowd account with `crowd` devices, a tenant with five."""

    def __init__(
        self, rt: Runtime, client: httpx.AsyncClient, crowd: int, tenant: int, token: str
    ) -> None:
        self.rt, self.client, self.token = rt, client, token
        self.crowd, self.tenant = crowd, tenant

    async def list_lines(self, path: str) -> tuple[int, list[dict[str, object]]]:
        """Lines run answering one GET of the tenant's list, and the list it answered."""
        headers = {"Authorization": f"Bearer {self.token}"}
        await self.client.get(path, headers=headers)  # anything built once is built now
        counter = Steps()
        with counter.on():
            r = await self.client.get(path, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body, list)
        return counter.count, body


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    out: list[Server] = []
    async with _server(SMALL) as small, _server(LARGE) as large:
        out.extend([small, large])
        yield out


@asynccontextmanager
async def _server(crowd: int) -> AsyncIterator[Server]:
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                        registrations_per_hour=100_000)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        other = await rt.auth.create_account("crowd@example.com", "Crowd", "correct horse C")
        tenant = await rt.auth.create_account("t@example.com", "Tenant", "correct horse T")
        now = rt.clock.now()
        await rt.add_devices([Device(0, other.id, f"SPCROWD{i:06d}", "SHPLG-1", f"c{i}", now)
                              for i in range(crowd)])  # fmt: skip
        models = ("SHPLG-1", "LG-MULTI-4", "SHPLG-1", "D101", "SHPLG-1")
        await rt.add_devices([Device(0, tenant.id, f"{i:010d}", m, f"t{i}", now, ("mine",))
                              for i, m in enumerate(models)])  # fmt: skip
        _, token = await rt.auth.issue(tenant.id, KIND_NATIVE, 3600.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Server(rt, client, other.id, tenant.id, token)


@pytest.mark.parametrize(
    "path", ["/api/v1/devices", "/api/v1/devices?family=plug", "/api/v1/devices?tag=mine"]
)
async def test_listing_a_tenants_devices_does_not_scan_the_fleet(
    servers: list[Server], path: str
) -> None:
    (small_lines, small_body), (large_lines, large_body) = [
        await s.list_lines(path) for s in servers
    ]
    assert large_lines <= small_lines * 1.05, (
        f"{small_lines} lines with {SMALL} other devices, {large_lines} with {LARGE}"
    )
    # the same answer at both sizes: the tenant's devices, in id order
    serials = [d["serial"] for d in large_body]
    assert serials == [d["serial"] for d in small_body]
    expected = 3 if "family" in path else TENANT_DEVICES
    assert len(serials) == expected and serials == sorted(serials)


def _gauge(rt: Runtime) -> dict[tuple[str, str], float]:
    """The switchgear_devices series of a scrape, by (family, state)."""
    out: dict[tuple[str, str], float] = {}
    for line in render(rt).decode().splitlines():
        if line.startswith("switchgear_devices{"):
            labels, value = line[len("switchgear_devices{") :].split("} ")
            pairs = dict(p.split("=") for p in labels.split(","))
            out[pairs["family"].strip('"'), pairs["state"].strip('"')] = float(value)
    return out


async def test_device_gauge_follows_devices_coming_and_going(world: World) -> None:
    rt = world.rt
    # the world: two plugs (one an account b's) and a strip, all on line
    assert _gauge(rt) == {("plug", "online"): 2, ("strip", "online"): 1}

    async def online(device: Device, on: bool) -> None:
        r = await world.client.post(
            f"/api/v1/sim/devices/{device.id}/online", json={"online": on}, headers=world.auth()
        )
        assert r.status_code < 300, r.text

    await online(world.plug_a, False)
    assert _gauge(rt) == {("plug", "online"): 1, ("plug", "offline"): 1, ("strip", "online"): 1}
    await online(world.strip_a, False)
    assert _gauge(rt) == {("plug", "online"): 1, ("plug", "offline"): 1, ("strip", "offline"): 1}
    await online(world.plug_a, True)
    assert _gauge(rt) == {("plug", "online"): 2, ("strip", "offline"): 1}
    added = await rt.add_device(
        Device(0, world.plug_a.account_id, "SPG-A-2", "SHPLG-1", "new", rt.clock.now())
    )
    assert rt.engine.shadow(added.id).online
    assert _gauge(rt) == {("plug", "online"): 3, ("strip", "offline"): 1}
