"""Simulated devices served by `switchgear fleet` over the machine's Mosquitto.

The server runs with `fleet=external`; the fleet runs in the test (FleetNode) or as a real
`switchgear fleet` subprocess (for kill -9). Devices are used through their vendor faces
and the native API; a raw MQTT client checks what a plug says in Shelly Gen1 topics.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from typer.testing import CliRunner

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.cli.main import app as cli
from switchgear.core.model import Device, FirmwareCommand
from switchgear.errors import InvalidInput
from switchgear.links import twinwire
from switchgear.links.fleetnode import FleetNode
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import BROKER, SECRET, require_broker, until
from tests.conftest import add
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

LINK = f"mqtt://{BROKER[0]}:{BROKER[1]}"


@dataclass
class Server:
    rt: Runtime
    client: httpx.AsyncClient
    account_id: int
    native: str
    smartplug: str
    powercontroller: str

    def h(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.native}"}

    async def device(self, device_id: int) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/devices/{device_id}", headers=self.h())
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def online(self, device_id: int) -> bool:
        return bool((await self.device(device_id))["online"])

    async def on(self, device_id: int) -> bool:
        return bool((await self.device(device_id))["channels"][0]["on"])

    async def switch(self, device_id: int, action: str) -> httpx.Response:
        path = f"/api/v1/devices/{device_id}/channels/0/switch"
        return await self.client.post(path, json={"action": action}, headers=self.h())

    async def history(self, device_id: int) -> list[dict[str, Any]]:
        r = await self.client.get(f"/api/v1/devices/{device_id}/history", headers=self.h())
        return list(r.json()["statuses"])


def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fleet.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database the server and its fleet share: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return database(tmp_path)
    pg: str = request.getfixturevalue("pg_database")
    await empty_schema(pg)
    return pg


@asynccontextmanager
async def server(url: str, first: bool = True) -> AsyncIterator[Server]:
    settings = Settings(database_url=url, speed=1, secret_key=SECRET, link=LINK,
                        fleet="external", command_timeout_s=5)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        assert rt.fleet_link is not None
        await until(lambda: rt.fleet_link is not None and rt.fleet_link.transport.connected)
        if first:
            await rt.auth.create_account("a@example.com", "Account A", "correct horse A")
        account = next(a for a in await rt.store.accounts() if a.email == "a@example.com")
        _, native = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            login = {"client_id": "mclimate", "client_secret": "mclimate_core",
                     "username": "a@example.com", "password": "correct horse A"}  # fmt: skip
            r = await client.post("/v1/auth/login", json=login)
            assert r.status_code == 200, r.text
            signin = {"user": {"email": "a@example.com", "password": "correct horse A"}}
            pc = await client.post("/v1/signin", json=signin)
            assert pc.status_code == 200, pc.text
            yield Server(rt, client, account.id, native, r.json()["auth"]["access_token"],
                         pc.json()["token"])  # fmt: skip


@asynccontextmanager
async def fleet(url: str) -> AsyncIterator[FleetNode]:
    node = FleetNode(open_store(url), *BROKER)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def devices(s: Server) -> tuple[Device, Device]:
    tag = secrets.token_hex(5).upper()
    plug = await add(s.rt, s.account_id, f"SPG{tag}", "SHPLG-1")
    pc = await add(s.rt, s.account_id, f"PC-{tag}-001", "power-controller-v10")
    return plug, pc


async def pc_id(s: Server, serial: str) -> str:
    h = s.h(s.powercontroller)
    found = (await s.client.get("/v1/devices", headers=h)).json()["devices"]
    return str(next(d["device"]["id"] for d in found if serial in str(d)))


@pytest.mark.mqtt
async def test_a_plug_and_a_power_controller_in_a_fleet_process_through_their_faces(
    url: str,
) -> None:
    require_broker()
    async with server(url) as s:
        plug, pc = await devices(s)
        gen1 = twinwire.mqtt_id(plug)
        assert gen1.startswith("shellyplug-") and len(gen1) == len("shellyplug-") + 6
        async with aiomqtt.Client(*BROKER, identifier=f"watch-{gen1}") as watch:
            await watch.subscribe(f"shellies/{gen1}/relay/0", qos=1)
            assert not await s.online(plug.id)  # no fleet process yet
            async with fleet(url) as node:
                assert set(node.clients) == {plug.id, pc.id}
                await until(lambda: s.online(plug.id))
                await until(lambda: s.online(pc.id))

                # the smart-plug face: the command is answered by the twin in the fleet
                body = {"serial_number": plug.serial, "command": "switch_on_off", "state": "on"}
                r = await s.client.post("/provider/send", headers=s.h(s.smartplug), json=body)
                assert r.status_code == 200, r.text
                assert r.json()["provider"]["isok"] is True
                assert await s.on(plug.id)
                # ... which says so in Shelly Gen1 topics too
                async with asyncio.timeout(5):
                    async for m in watch.messages:
                        if m.payload == b"on":
                            break
                # settings, which Gen1 takes only over HTTP, go over the RPC
                r = await s.client.patch(f"/api/v1/devices/{plug.id}/settings",
                                         json={"power_on": "last"}, headers=s.h())  # fmt: skip
                assert r.status_code == 200, r.text
                assert r.json()["channels"][0]["settings"]["power_on"] == "last"

                # the power controller's face, then the native API
                pid = await pc_id(s, pc.serial)
                r = await s.client.post(f"/v1/devices/{pid}/command",
                                        json={"command": {"name": "off"}},
                                        headers=s.h(s.powercontroller))  # fmt: skip
                assert r.status_code == 200, r.text
                assert not await s.on(pc.id)
                r = await s.switch(pc.id, "on")
                assert r.status_code == 200 and r.json()["state"] == "done", r.text
                assert await s.on(pc.id)
                assert node.fleet.get(pc.id).snapshot().channels[0].on  # type: ignore[union-attr]

                # a Gen1 client (Home Assistant, say) switches the plug off itself
                await watch.publish(f"shellies/{gen1}/relay/0/command", b"off", qos=1)
                await until(lambda: _not(s.on(plug.id)))
                reasons = [h["kind"] for h in await s.history(plug.id)]
                assert "relay" in reasons

            # the fleet process left: its devices say so
            await until(lambda: _not(s.online(plug.id)))
            r = await s.switch(plug.id, "on")
            assert r.status_code == 503


@pytest.mark.mqtt
async def test_kill_9_of_the_fleet_process_takes_its_devices_offline_and_a_restart_brings_them_back(
    url: str,
) -> None:
    require_broker()
    async with server(url) as s:
        plug, pc = await devices(s)
        proc = _fleet_process(url)
        try:
            await until(lambda: s.online(plug.id), 90)  # a cold start on a busy machine
            await until(lambda: s.online(pc.id), 10)
            r = await s.client.patch(f"/api/v1/devices/{plug.id}/settings",
                                     json={"power_on": "last"}, headers=s.h())  # fmt: skip
            assert r.status_code == 200, r.text
            assert (await s.switch(plug.id, "on")).json()["state"] == "done"

            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            # the broker's last will: offline on the native and the smart-plug face
            await until(lambda: _not(s.online(plug.id)), 10)
            await until(lambda: _not(s.online(pc.id)), 10)
            r = await s.client.post("/provider/fetch", headers=s.h(s.smartplug),
                                    json={"serial_number": plug.serial})  # fmt: skip
            assert r.json()["provider"]["online"] is False
            history = await s.history(plug.id)
            assert any(h["kind"] == "connection" and h["reason"] == "offline" for h in history)

            proc = _fleet_process(url)  # restart: the NVRAM it persisted brings the relay back
            await until(lambda: s.online(plug.id), 90)  # a cold start on a busy machine
            await until(lambda: s.on(plug.id), 10)
            await until(lambda: s.online(pc.id), 10)  # each device its own session, own pace
            r = await s.switch(pc.id, "off")
            assert r.status_code == 200 and r.json()["state"] == "done", r.text
        finally:
            proc.kill()
            proc.wait(10)


@pytest.mark.mqtt
async def test_a_power_cycle_and_the_network_through_the_native_sim_routes(
    tmp_path: Path,
) -> None:
    require_broker()
    url = database(tmp_path)
    async with server(url) as s:
        plug, _ = await devices(s)
        async with fleet(url):
            await until(lambda: s.online(plug.id))
            assert (await s.switch(plug.id, "on")).json()["state"] == "done"
            r = await s.client.post(f"/api/v1/sim/devices/{plug.id}/power-cycle", headers=s.h())
            assert r.status_code == 200, r.text
            assert r.json()["channels"][0]["on"] is False  # powers on off (its default)
            assert any(h["reason"] == "reboot" for h in await s.history(plug.id))

            r = await s.client.post(f"/api/v1/sim/devices/{plug.id}/online",
                                    json={"online": False}, headers=s.h())  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["online"] is False
            assert (await s.switch(plug.id, "on")).status_code == 503
            r = await s.client.post(f"/api/v1/sim/devices/{plug.id}/online",
                                    json={"online": True}, headers=s.h())  # fmt: skip
            assert r.json()["online"] is True
            assert (await s.switch(plug.id, "on")).json()["state"] == "done"

            # the account's grid: a step the fleet's devices follow, and its end
            r = await s.client.put("/api/v1/sim/grid", headers=s.h(),
                                   json={"frequency_hz": 49.5, "duration_s": 2})  # fmt: skip
            assert r.status_code == 200, r.text
            await until(lambda: _frequency(s, plug.id, 49.5))
            await until(lambda: _frequency(s, plug.id, 50.0), 10)

            # a server registering a simulated device: the running fleet takes it on
            pc = await add(s.rt, s.account_id, f"PC-{secrets.token_hex(5).upper()}-002",
                           "power-controller-v10")  # fmt: skip
            await until(lambda: s.online(pc.id))


@pytest.mark.mqtt
async def test_a_strip_takes_rpc_requests_once_however_often_they_arrive(tmp_path: Path) -> None:
    require_broker()
    url = database(tmp_path)
    async with server(url) as s:
        strip = await add(s.rt, s.account_id, f"LGM{secrets.token_hex(5).upper()}", "LG-MULTI-4")
        async with fleet(url) as node:
            await until(lambda: s.online(strip.id))
            r = await s.client.post(f"/api/v1/devices/{strip.id}/channels/2/switch",
                                    json={"action": "on"}, headers=s.h())  # fmt: skip
            assert r.status_code == 200 and r.json()["state"] == "done", r.text
            assert (await s.device(strip.id))["channels"][2]["on"] is True

            me = f"dup-{secrets.token_hex(4)}"
            request = {"id": 1, "src": me, "method": "Strip.Set",
                       "params": {"action": "toggle", "channel": 0}}  # fmt: skip
            async with aiomqtt.Client(*BROKER, identifier=me) as raw:
                await raw.subscribe(f"{me}/rpc", qos=1)
                for _ in range(2):  # QoS 1 may deliver a request twice
                    await raw.publish(twinwire.rpc_topic(strip), json.dumps(request), qos=1)
                bad = {**request, "id": 2, "method": "Strip.Explode"}
                await raw.publish(twinwire.rpc_topic(strip), json.dumps(bad), qos=1)
                answers: list[dict[str, Any]] = []
                async with asyncio.timeout(5):
                    async for m in raw.messages:
                        answers.append(json.loads(m.payload))  # type: ignore[arg-type]
                        if len(answers) == 3:
                            break
            assert answers[0] == answers[1] and answers[0]["result"]["ok"] is True
            assert answers[2]["error"]["type"] == "InvalidCommand"
            twin = node.fleet.get(strip.id)
            assert twin is not None and twin.snapshot().channels[0].on is True  # toggled once
            await until(lambda: _channel_on(s, strip.id, 0))


@pytest.mark.mqtt
async def test_a_fleet_ignores_the_grid_step_of_another_deployment_on_its_broker(
    tmp_path: Path,
) -> None:
    """Two deployments on one broker (each account 1 of its own database): a grid step is
    carried with its deployment's id (kept in the database), so only its fleet follows."""
    require_broker()
    url_a, url_b = database(tmp_path / "a"), database(tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with server(url_a) as a, server(url_b) as b:
        assert a.account_id == b.account_id
        assert a.rt.fleet_link and b.rt.fleet_link
        assert a.rt.fleet_link.deployment != b.rt.fleet_link.deployment != ""
        mine, _ = await devices(a)
        theirs, _ = await devices(b)
        async with fleet(url_a), fleet(url_b):
            await until(lambda: _frequency(a, mine.id, 50.0) and _frequency(b, theirs.id, 50.0))
            r = await b.client.put("/api/v1/sim/grid", headers=b.h(), json={"frequency_hz": 49.5})
            assert r.status_code == 200, r.text
            await until(lambda: _frequency(b, theirs.id, 49.5))
            # a's fleet had the same message as early: a refresh reports what it made of it
            assert (await a.switch(mine.id, "on")).json()["state"] == "done"
            assert _frequency(a, mine.id, 50.0)


def _frequency(s: Server, device_id: int, hz: float) -> bool:
    meters = s.rt.engine.shadow(device_id).meters
    return bool(meters) and abs(meters[0].frequency_hz - hz) < 0.05


async def _channel_on(s: Server, device_id: int, channel: int) -> bool:
    return bool((await s.device(device_id))["channels"][channel]["on"])


@pytest.mark.mqtt
async def test_a_server_restarted_beside_a_running_fleet_finds_its_devices_as_they_are(
    tmp_path: Path,
) -> None:
    require_broker()
    url = database(tmp_path)
    async with server(url) as s:
        plug, _ = await devices(s)
        meter = await add(s.rt, s.account_id, f"{secrets.randbelow(10**9):09d}1", "D101")
        anchor = await s.rt.store.meta("clock_anchor")
    async with fleet(url):
        async with server(url, first=False) as s:
            assert await s.rt.store.meta("clock_anchor") == anchor  # the same shared clock
            await until(lambda: s.online(plug.id))
            assert (await s.switch(plug.id, "on")).json()["state"] == "done"
            await until(lambda: s.online(meter.id))
            shown = await s.device(meter.id)
            assert shown["meters"] and shown["meters"][0]["voltage_v"] > 100
        async with server(url, first=False) as s:
            await until(lambda: s.on(plug.id))  # as the device says, not as the server left it
            history = await s.history(plug.id)
            assert not [
                h for h in history if h["kind"] == "connection" and h["reason"] == "offline"
            ]


@pytest.mark.mqtt
async def test_a_push3_gateway_runs_a_command_on_its_meter_inside_the_fleet(
    tmp_path: Path,
) -> None:
    require_broker()
    url = database(tmp_path)
    async with server(url) as s:
        gateway = f"4016{secrets.token_hex(4).upper()}"
        address = f"{secrets.randbelow(10**12):012d}"
        gw = await add_with(s.rt, s.account_id, gateway, "PUSH3")
        meter = await add_with(s.rt, s.account_id, address, "OMNIMETER-V4", gateway=gateway)
        async with fleet(url):
            await until(lambda: s.online(gw.id))
            await until(lambda: s.online(meter.id))
            assert s.rt.engine.shadow(meter.id).channels[0].on is False
            params = {"relay": "Relay_1", "status": "close", "duration": 0,
                      "meter_password": "00000000"}  # fmt: skip
            forward = FirmwareCommand("push3.command", {
                "msg_id": secrets.token_hex(8), "command": "SetRelay", "target": "meter",
                "target_id": address, "params": params, "channel": "c1", "client": "t",
            })  # fmt: skip
            rec = await s.rt.engine.command(s.account_id, gw.id, forward)
            assert rec.state.value == "done", rec
            # the gateway runs it on its meter later, device to device, in the fleet process
            await until(lambda: s.rt.engine.shadow(meter.id).channels[0].on, 10)


async def add_with(rt: Runtime, account_id: int, serial: str, model: str, **attrs: str) -> Device:
    device = Device(0, account_id, serial, model, serial, rt.clock.now(), attrs=attrs)
    return await rt.add_device(device)


async def test_a_manual_clock_is_refused_for_an_external_fleet(tmp_path: Path) -> None:
    settings = Settings(database_url=database(tmp_path), speed=0, secret_key=SECRET,
                        link=LINK, fleet="external")  # fmt: skip
    with pytest.raises(InvalidInput, match="manual clock"):
        await Runtime.start(settings)
    result = CliRunner().invoke(cli, ["serve", "--fleet", "external", "--speed", "0",
                                      "--link", LINK])  # fmt: skip
    assert result.exit_code != 0 and "manual clock" in result.output
    result = CliRunner().invoke(cli, ["serve", "--fleet", "external"])
    assert result.exit_code != 0 and "--link mqtt://" in result.output


def test_the_fleet_command_refuses_a_bad_shard() -> None:
    result = CliRunner().invoke(cli, ["fleet", "--link", LINK, "--shard", "2/2"])
    assert result.exit_code != 0 and "shard" in result.output


@pytest.mark.mqtt
async def test_an_ffr_trip_is_one_report_message_and_each_status_is_stored_once(
    url: str,
) -> None:
    """A trip's trigger and relay events (and the state they share) go in one message,
    with the grid step's `update/grid` (its own state, the relay still on) before them."""
    require_broker()
    async with server(url) as s:
        pc = await add(s.rt, s.account_id, f"PC-{secrets.token_hex(5).upper()}-001",
                       "power-controller-v10")  # fmt: skip
        topic = twinwire.events_topic(pc)
        async with fleet(url), aiomqtt.Client(*BROKER, identifier=f"w-{topic[:20]}") as watch:
            await until(lambda: s.online(pc.id))
            ffr = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8,
                   "periods": 10, "delay": 10}  # fmt: skip
            rec = await s.rt.engine.command(s.account_id, pc.id,
                                            FirmwareCommand("pc.config", {"ffr": ffr}))  # fmt: skip
            assert rec.state.value == "done"
            await watch.subscribe(topic, qos=1)
            messages: list[dict[str, Any]] = []

            async def hear() -> None:
                async for m in watch.messages:
                    messages.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]

            hearing = asyncio.create_task(hear())
            await s.rt.set_grid(s.account_id, 59.6, None)

            async def tripped() -> bool:  # each status stored once
                stored = sorted(h["kind"] for h in await s.history(pc.id) if h["reason"] == "ffr")
                return stored == ["relay", "trigger"]

            await until(tripped, 10)
            assert not await s.on(pc.id)
            hearing.cancel()
            reasons = [[e["reason"] for e in m["params"].get("events", ())] for m in messages]
            trips = [m for m, r in zip(messages, reasons, strict=True) if "ffr" in r]
            assert len(trips) == 1, messages  # trigger/ffr and relay/ffr: one message
            assert not [r for r in reasons if "grid" in r and "ffr" not in r], messages
            events = trips[0]["params"]["events"]
            assert [(e["kind"], e["reason"]) for e in events][:3] == [
                ("update", "grid"), ("trigger", "ffr"), ("relay", "ffr"),
            ]  # fmt: skip
            grid, trigger, relay = events[:3]
            assert grid["record"] is False and grid["state"]["channels"][0]["on"] is True
            assert trigger["state"]["channels"][0]["on"] is False
            assert "state" not in relay, events  # the trigger's state, sent once


async def _not(check: Any) -> bool:
    return not await check


def _fleet_process(url: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "switchgear", "fleet", "--link", LINK, "--database-url", url]
    return subprocess.Popen(cmd, env={**os.environ}, stdout=subprocess.DEVNULL)
