"""`?async=true` requests kept for an offline power controller, with two API workers.

Each worker is a whole server app on PostgreSQL and the machine's Mosquitto, as each
process of `serve --workers N` is; the controller runs in a FleetNode. A worker's restart
is the supervisor's replacing it: a new app on the same database.
"""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack
from typing import Any

import pytest

from switchgear.core.model import Device
from switchgear.core.ports import SimAction
from switchgear.links.fleetnode import FleetNode
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import BROKER, until
from tests.api.test_workers import EMAIL, PASSWORD, Worker, url, worker  # noqa: F401
from tests.dialects.test_push3_workers import peered_pair
from tests.storage.conftest import pg_database  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

MODEL = "power-controller-v10"
RETURN_S = 15.0  # the controller back and its kept request retried (every 5 s)


@pytest.mark.parametrize("restart", [False, True], ids=["both-live", "older-restarted"])
async def test_only_the_newest_request_kept_on_two_workers_runs_once(
    url: str,  # noqa: F811 (the fixture above)
    restart: bool,
) -> None:
    secret = f"pc-workers-{secrets.token_hex(16)}"
    serial = f"PC-W{secrets.token_hex(4).upper()}01-001"
    async with AsyncExitStack() as stack:
        first, a, b, account = await peered_pair(stack, url, secret)
        pc = await a.rt.add_device(Device(0, account.id, serial, MODEL, serial,
                                          a.rt.clock.now()))  # fmt: skip
        node = FleetNode(open_store(url), *BROKER, gateway_delay_s=0.2)
        await node.start()
        stack.push_async_callback(node.stop)
        await _online(a, b, pc.id, True)
        token = await _signin(a)
        pc_id = await _face_id(a, token)
        await a.rt.simulate(account.id, pc.id, SimAction("online", online=False))
        await _online(a, b, pc.id, False)
        for w, name in ((a, "off"), (b, "on")):  # B's is the newer: it replaces A's
            r = await w.client.post(f"/v1/devices/{pc_id}/command?async=true",
                                    json={"command": {"name": name}},
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert r.status_code == 202, r.text
            await until(lambda w=w: bool(_kept(w)), RETURN_S)  # type: ignore[misc]
        if restart:
            await first.aclose()  # A is gone; the supervisor starts its replacement
            a = await stack.enter_async_context(worker("A'", url, secret))
            await until(lambda: len(b.rt.peers.present) == 1)  # type: ignore[attr-defined]
        await b.rt.simulate(account.id, pc.id, SimAction("online", online=True))
        await _online(a, b, pc.id, True)
        await until(lambda: not _kept(a) and not _kept(b), RETURN_S)
        await until(lambda: not _sending(a) and not _sending(b))  # a second run: recorded
        runs = [s["info"]["update"] for s in await _functions(b, token, pc_id)]
        assert runs == [{"on": True}], f"only the newest request runs, once: {runs}"


def _kept(w: Worker) -> dict[int, Any]:
    return dict(w.rt.extensions["powercontroller.pending"].requests)


def _sending(w: Worker) -> bool:
    """Whether a request of the worker's is on its way (a send returns once recorded)."""
    return any(t.get_name().startswith("pc-") and not t.done() for t in w.rt.tasks)


async def _signin(w: Worker) -> str:
    r = await w.client.post("/v1/signin", json={"user": {"email": EMAIL, "password": PASSWORD}})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _face_id(w: Worker, token: str) -> str:
    r = await w.get("/v1/devices", token)
    assert r.status_code == 200, r.text
    return str(r.json()["devices"][0]["device"]["id"])


async def _functions(w: Worker, token: str, pc_id: str) -> list[dict[str, Any]]:
    r = await w.get("/v1/statuses", token, params={"device": pc_id})
    assert r.status_code == 200, r.text
    return [s for s in r.json()["statuses"] if s["type"] == "function"]


async def _online(a: Worker, b: Worker, device_id: int, online: bool) -> None:
    for w in (a, b):
        await until(lambda w=w: w.rt.engine.shadow(device_id).online is online, RETURN_S)  # type: ignore[misc]
