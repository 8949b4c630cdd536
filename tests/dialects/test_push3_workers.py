"""Commands waiting for an offline Push3 gateway, with two API workers on one database.

Each worker is a whole server app on PostgreSQL and the machine's Mosquitto, as each
process of `serve --workers N` is; the gateway and its meter run in a FleetNode. A
worker's restart is the supervisor's replacing it: a new app on the same database.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from contextlib import AsyncExitStack

import pytest

from switchgear.auth.scopes import KIND_PUSH3_KEY
from switchgear.core.model import Account, Device
from switchgear.core.ports import SimAction
from switchgear.links.fleetnode import FleetNode
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import BROKER, until
from tests.api.test_workers import EMAIL, PASSWORD, Stream, Worker, url, worker  # noqa: F401
from tests.storage.conftest import pg_database  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

RETURN_S = 15.0  # the gateway back: it polls within a second; a loaded machine, more


def _hold(address: str, relay: str, channel: str) -> dict[str, object]:
    return {"command": "SetRelay", "target": "meter", "target_id": address,
            "response_channel_id": channel,
            "params": {"relay": relay, "status": "close", "duration": 0,
                       "meter_password": "00000000"}}  # fmt: skip


def _answers(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def peered_pair(
    stack: AsyncExitStack, database: str, secret: str
) -> tuple[AsyncExitStack, Worker, Worker, Account]:
    """Workers B and A on one database, peered, and an account made on A: A's own stack
    (returned first) closes A alone, as the supervisor's restart replaces it."""
    b = await stack.enter_async_context(worker("B", database, secret))
    first = AsyncExitStack()
    stack.push_async_callback(first.aclose)
    a = await first.enter_async_context(worker("A", database, secret))
    await until(lambda: len(b.rt.peers.present) == 1)  # type: ignore[attr-defined]
    account = await a.rt.auth.create_account(EMAIL, "Account A", PASSWORD)
    return first, a, b, account


async def test_commands_waiting_on_two_workers_run_once_each_after_one_restarts(
    url: str,  # noqa: F811 (the fixture above)
) -> None:
    secret = f"push3-workers-{secrets.token_hex(16)}"
    gateway = f"4016{secrets.token_hex(4).upper()}"
    address = f"{secrets.randbelow(10**12):012d}"
    channel = f"outbox{secrets.token_hex(12)}"
    async with AsyncExitStack() as stack:
        first, a, b, account = await peered_pair(stack, url, secret)
        gw = await a.rt.add_device(Device(0, account.id, gateway, "PUSH3", gateway,
                                          a.rt.clock.now()))  # fmt: skip
        attrs = {"gateway": gateway}
        meter = await a.rt.add_device(Device(0, account.id, address, "OMNIMETER-V4", address,
                                             a.rt.clock.now(), attrs=attrs))  # fmt: skip
        _, key = await a.rt.auth.issue(account.id, KIND_PUSH3_KEY, None)
        node = FleetNode(open_store(url), *BROKER, gateway_delay_s=0.2)
        await node.start()
        stack.push_async_callback(node.stop)
        await _online(a, b, gw.id, True)
        await a.rt.simulate(account.id, gw.id, SimAction("online", online=False))
        await _online(a, b, gw.id, False)
        sent: dict[str, str] = {}  # msg_id: the worker that took the command
        for w, relay in ((a, "Relay_1"), (b, "Relay_2")):
            r = await w.client.post(f"/sendCommand?key={key}", json=_hold(address, relay, channel))
            assert r.status_code == 200, r.text
            sent[r.json()["msg_id"]] = w.name
        await first.aclose()  # A is gone; the supervisor starts its replacement
        again = await stack.enter_async_context(worker("A'", url, secret))
        await until(lambda: len(b.rt.peers.present) == 1)  # type: ignore[attr-defined]
        await b.rt.simulate(account.id, gw.id, SimAction("online", online=True))
        await _online(again, b, gw.id, True)

        def both_closed() -> bool:
            channels = b.rt.engine.shadow(meter.id).channels
            return channels[0].on is True and channels[1].on is True

        with contextlib.suppress(TimeoutError):
            await until(both_closed, RETURN_S)
        async with Stream(b.app, f"/sub/{channel}.b20") as sub:
            with contextlib.suppress(TimeoutError):  # a command run twice answers twice
                await sub.until(lambda t: len(_answers(t)) > len(sent), 3.0)
        ids = [str(m["msg_id"]) for m in _answers(sub.text)]
        runs = {f"{msg_id} (sent to {w})": ids.count(msg_id) for msg_id, w in sent.items()}
        assert list(runs.values()) == [1, 1], f"each waiting command runs once: {runs}"
        assert both_closed()


async def _online(a: Worker, b: Worker, device_id: int, online: bool) -> None:
    for w in (a, b):
        await until(lambda w=w: w.rt.engine.shadow(device_id).online is online, RETURN_S)  # type: ignore[misc]
