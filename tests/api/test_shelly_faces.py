"""Adopted Shelly devices (fakes over the machine's Mosquitto) on every face that serves
plugs, as issue #22 promises: each bad adoption a problem document, the native API, the
smart-plug API, live events and history while the device is up, gone (its last will) and
back, and another account's answers identical to a device that does not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.links import twinwire
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_mqtt_devices import BROKER, SECRET, Gen1, Gen2, require_broker, until
from tests.api.test_workers import Stream, events

pytestmark = pytest.mark.mqtt

PROBLEM = "application/problem+json"


@dataclass
class Faces:
    app: FastAPI
    rt: Runtime
    client: httpx.AsyncClient
    native: dict[str, str]  # account A
    native_b: dict[str, str]
    plug: dict[str, str]  # A's smart-plug access token header
    plug_b: dict[str, str]
    token_b: str

    async def adopt(self, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post("/api/v1/devices", json=body, headers=headers)

    async def device(self, dev: int) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/devices/{dev}", headers=self.native)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def online(self, dev: int) -> bool:
        return bool((await self.device(dev))["online"])

    async def offline(self, dev: int) -> bool:
        return not (await self.device(dev))["online"]

    async def relay(self, dev: int) -> bool | None:
        return bool((await self.device(dev))["channels"][0]["on"])

    async def history(self, dev: int) -> list[dict[str, Any]]:
        await self.rt.journal.flush()
        r = await self.client.get(f"/api/v1/devices/{dev}/history", headers=self.native)
        assert r.status_code == 200, r.text
        return list(r.json()["statuses"])


async def _login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    body = {"client_id": "mclimate", "client_secret": "mclimate_core",
            "username": email, "password": password}  # fmt: skip
    r = await client.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['auth']['access_token']}"}


@pytest.fixture
async def faces() -> AsyncIterator[Faces]:
    require_broker()
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                        link=f"mqtt://{BROKER[0]}:{BROKER[1]}", command_timeout_s=5)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        await until(lambda: rt.mqtt is not None and rt.mqtt.transport.connected)
        a = await rt.auth.create_account("a@example.com", "Account A", "correct horse A")
        b = await rt.auth.create_account("b@example.com", "Account B", "correct horse B")
        _, token_a = await rt.auth.issue(a.id, KIND_NATIVE, 30 * 86400.0)
        _, token_b = await rt.auth.issue(b.id, KIND_NATIVE, 30 * 86400.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Faces(
                app, rt, client,
                {"Authorization": f"Bearer {token_a}"}, {"Authorization": f"Bearer {token_b}"},
                await _login(client, "a@example.com", "correct horse A"),
                await _login(client, "b@example.com", "correct horse B"),
                token_b,
            )  # fmt: skip


def assert_problem(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.headers
    body = r.json()
    assert body["status"] == status and body["title"], body
    for word in words:
        assert word in body["detail"], body


async def test_each_bad_adoption_is_a_problem_document_and_stores_nothing(faces: Faces) -> None:
    async with Gen1() as plug:
        bad: list[tuple[dict[str, Any], int, tuple[str, ...]]] = [
            ({"protocol": "shelly-gen3", "mqtt_id": plug.mqtt_id}, 400, ("protocol",)),
            ({"protocol": "shelly-gen1"}, 400, ("mqtt_id",)),
            ({"protocol": "shelly-gen1", "mqtt_id": "shellies/#"}, 400,
             ("mqtt_id: one MQTT topic level", "shellyplug-A1B2C3")),
            ({"protocol": "shelly-gen1", "mqtt_id": plug.mqtt_id, "serial": "a b"}, 400,
             ("serial: one MQTT topic level",)),
        ]  # fmt: skip
        for body, status, words in bad:
            assert_problem(await faces.adopt(faces.native, **body), status, *words)
        r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        assert r.status_code == 201, r.text
        # by the other account, and by the same: one answer, which does not say whose
        again = {"protocol": "shelly-gen1", "mqtt_id": plug.mqtt_id}
        theirs = await faces.adopt(faces.native_b, **again)
        assert_problem(theirs, 409, "adopted already")
        mine = await faces.adopt(faces.native, **again)
        assert theirs.json() == mine.json()
        r = await faces.client.get("/api/v1/devices", headers=faces.native_b)
        assert r.json() == []
        # the smart-plug face finds a plug by its serial: a Gen2 may not take a Gen1's
        for headers in (faces.native, faces.native_b):
            r = await faces.adopt(headers, protocol="shelly-gen2", mqtt_id="shellyplusplugs-0",
                                  serial=plug.mqtt_id)  # fmt: skip
            assert_problem(r, 409, "serial")
        r = await faces.client.get("/api/v1/devices", headers=faces.native)
        assert [d["serial"] for d in r.json()] == [plug.mqtt_id]


@pytest.mark.parametrize("gen", [Gen1, Gen2])
async def test_gone_is_offline_on_every_face_and_back_resyncs(
    faces: Faces, gen: type[Gen1 | Gen2]
) -> None:
    async with gen() as plug:
        serial = f"K{plug.mqtt_id[-6:]}"
        r = await faces.adopt(faces.native, protocol=plug_protocol(plug), mqtt_id=plug.mqtt_id,
                              name="kettle", serial=serial)  # fmt: skip
        assert r.status_code == 201, r.text
        dev = r.json()["id"]
        await until(lambda: faces.online(dev))
        async with Stream(faces.app, f"/api/v1/events?device={dev}", faces.native[
                "Authorization"].removeprefix("Bearer ")) as sse:  # fmt: skip
            await sse.until(lambda t: ": connected" in t)
            r = await faces.client.post(
                "/provider/send",
                headers=faces.plug,
                json={"serial_number": serial, "command": "switch_on_off", "state": "on"},
            )
            assert r.status_code == 200 and r.json()["provider"]["isok"] is True, r.text
            assert plug.on
            r = await faces.client.get(f"/v1/controllers/{serial}", headers=faces.plug)
            assert r.json()["controller"]["relay_state"] is True
            assert r.json()["controller"]["online"] is True
            await until(lambda: _fetched(faces, serial, {"online": True, "power": [42.5]}))
            # the broker publishes the device's last will
            await plug.say("online", "false")
            await until(lambda: faces.offline(dev))
            text = await sse.until(lambda t: any(e["kind"] == "connection" for e in events(t)))
        relay = [e for e in events(text) if e["kind"] == "relay"]
        assert relay and relay[0]["reason"] == "api" and relay[0]["state"]["channels"][0]["on"]
        gone = [e for e in events(text) if e["kind"] == "connection"]
        assert gone[-1]["reason"] == "offline" and gone[-1]["state"]["online"] is False
        # each face's offline answer
        r = await faces.client.post("/provider/fetch", headers=faces.plug,
                                    json={"serial_number": serial})  # fmt: skip
        assert r.json()["provider"] == {"online": False, "power": []}
        r = await faces.client.get(f"/v1/controllers/{serial}", headers=faces.plug)
        assert r.json()["controller"]["online"] is False
        r = await faces.client.get("/v1/controllers", headers=faces.plug)
        assert [c["online"] for c in r.json()["_embedded"]["controller"]] == [False]
        r = await faces.client.post(
            "/provider/send",
            headers=faces.plug,
            json={"serial_number": serial, "command": "switch_on_off", "state": "off"},
        )
        assert_problem(r, 503)
        r = await faces.client.post(f"/api/v1/devices/{dev}/channels/0/switch",
                                    headers=faces.native, json={"action": "off"})  # fmt: skip
        assert_problem(r, 503, "offline")
        assert plug.on  # nothing reached it
        # back, switched off by hand meanwhile: it says hello and every face follows
        plug.on = False
        await plug.say("online", "true")
        await until(lambda: faces.online(dev))
        await until(lambda: _not_on(faces, dev))
        r = await faces.client.get(f"/v1/controllers/{serial}", headers=faces.plug)
        assert r.json()["controller"]["online"] is True
        assert r.json()["controller"]["relay_state"] is False
        r = await faces.client.post("/provider/fetch", headers=faces.plug,
                                    json={"serial_number": serial})  # fmt: skip
        assert r.json()["provider"] == {"online": True, "power": [0]}
        kinds = [(s["kind"], s["reason"], s["data"].get("on")) for s in await faces.history(dev)]
        assert ("relay", "api", True) in kinds and ("connection", "offline", None) in kinds
        assert kinds.index(("relay", "device", False)) > kinds.index(("connection", "offline",
                                                                      None))  # fmt: skip


async def _fetched(faces: Faces, serial: str, provider: dict[str, Any]) -> bool:
    r = await faces.client.post("/provider/fetch", headers=faces.plug,
                                json={"serial_number": serial})  # fmt: skip
    return bool(r.json()["provider"] == provider)


async def _not_on(faces: Faces, dev: int) -> bool:
    return not await faces.relay(dev)


def plug_protocol(plug: Gen1 | Gen2) -> str:
    return "shelly-gen1" if isinstance(plug, Gen1) else "shelly-gen2"


async def test_a_retained_report_of_a_device_that_is_gone_does_not_bring_it_online(
    faces: Faces,
) -> None:
    """A Gen1 with its "retain" setting on leaves its last relay report on the broker;
    its last will (retained) says it is gone. Adopted then, it is offline on the faces
    until it says `online` = `true` itself."""
    plug = Gen1()
    base = f"shellies/{plug.mqtt_id}"
    try:
        async with plug:
            for topic, payload in (("relay/0", "on"), ("relay/0/power", "42.50"),
                                   ("relay/0/energy", "600"), ("online", "false")):  # fmt: skip
                await plug.client.publish(f"{base}/{topic}", payload.encode(), qos=1,
                                          retain=True)  # fmt: skip
        r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        assert r.status_code == 201, r.text
        dev = r.json()["id"]
        # a live plug adopted next: once it is online, the server has taken the messages
        # the broker sent it before (the retained ones of the first) too
        async with Gen1() as live:
            r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=live.mqtt_id)
            await until(lambda: faces.online(r.json()["id"]))
        shown = await faces.device(dev)
        assert shown["online"] is False, shown
        r = await faces.client.post(f"/api/v1/devices/{dev}/channels/0/switch",
                                    headers=faces.native, json={"action": "off"})  # fmt: skip
        assert_problem(r, 503, "offline")
        # it comes back: says so, answers the server's request for its state
        async with Gen1(plug.mqtt_id) as back:
            back.on = True
            await back.say("online", "true")
            await until(lambda: faces.online(dev))
            await until(lambda: faces.relay(dev))
    finally:
        async with aiomqtt.Client(*BROKER, identifier=f"cleanup-{plug.mqtt_id}") as c:
            for topic in ("relay/0", "relay/0/power", "relay/0/energy", "online"):
                await c.publish(f"{base}/{topic}", b"", qos=1, retain=True)


async def test_another_account_gets_the_answers_of_a_device_that_does_not_exist(
    faces: Faces,
) -> None:
    async with Gen1() as plug:
        serial = f"K{plug.mqtt_id[-6:]}"
        r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=plug.mqtt_id,
                              serial=serial)  # fmt: skip
        dev = r.json()["id"]
        await until(lambda: faces.online(dev))
        missing, nobody = dev + 1000, "K000000"
        c, nb, pb = faces.client, faces.native_b, faces.plug_b
        probes: list[tuple[str, Any]] = [
            ("show", lambda d, s: c.get(f"/api/v1/devices/{d}", headers=nb)),
            ("switch", lambda d, s: c.post(f"/api/v1/devices/{d}/channels/0/switch",
                                           headers=nb, json={"action": "on"})),
            ("settings", lambda d, s: c.patch(f"/api/v1/devices/{d}/settings", headers=nb,
                                              json={"power_on": "on"})),
            ("history", lambda d, s: c.get(f"/api/v1/devices/{d}/history", headers=nb)),
            ("events", lambda d, s: c.get(f"/api/v1/events?device={d}", headers=nb)),
            ("sim", lambda d, s: c.post(f"/api/v1/sim/devices/{d}/online", headers=nb,
                                        json={"online": False})),
            ("send", lambda d, s: c.post("/provider/send", headers=pb, json={
                "serial_number": s, "command": "switch_on_off", "state": "on"})),
            ("fetch", lambda d, s: c.post("/provider/fetch", headers=pb,
                                          json={"serial_number": s})),
            ("controller", lambda d, s: c.get(f"/v1/controllers/{s}", headers=pb)),
        ]  # fmt: skip
        for name, probe in probes:
            theirs, none = await probe(dev, serial), await probe(missing, nobody)
            assert theirs.status_code == 404, (name, theirs.text)
            assert theirs.headers["content-type"] == PROBLEM, name
            mask = {str(dev): "X", serial: "X", str(missing): "X", nobody: "X"}
            assert _masked(theirs.text, mask) == _masked(none.text, mask), name
        r = await c.get("/v1/controllers", headers=pb)
        assert r.json()["total"] == 0
        # B's live events carry none of A's device's (A's stream, fed alike, has them)
        token_a = faces.native["Authorization"].removeprefix("Bearer ")
        async with Stream(faces.app, "/api/v1/events", faces.token_b) as theirs, Stream(
            faces.app, "/api/v1/events", token_a
        ) as mine:  # fmt: skip
            await theirs.until(lambda t: ": connected" in t)
            await mine.until(lambda t: ": connected" in t)
            r = await c.post(f"/api/v1/devices/{dev}/channels/0/switch", headers=faces.native,
                             json={"action": "on"})  # fmt: skip
            assert r.json()["state"] == "done", r.text
            await mine.until(lambda t: any(e["kind"] == "relay" for e in events(t)))
            assert events(theirs.text) == []
        r = await c.get("/api/v1/devices", headers=nb)
        assert r.json() == []
        ons = [t for t, p in plug.received if t.endswith("/command") and p == b"on"]
        assert len(ons) == 1  # A's own


def _masked(text: str, mask: dict[str, str]) -> str:
    for word, instead in mask.items():
        text = text.replace(word, instead)
    return text


async def test_adoption_attempts_count_against_the_hourly_registration_allowance(
    faces: Faces,
) -> None:
    """A 409 tells that someone adopted an MQTT id: probing for them is limited per account
    as every other registration is (`registrations_per_hour`)."""
    async with Gen1() as plug:
        r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        assert r.status_code == 201, r.text
        limit = faces.rt.settings.registrations_per_hour
        for _ in range(limit):
            r = await faces.adopt(faces.native_b, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
            assert r.status_code == 409, r.text
        r = await faces.adopt(faces.native_b, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) > 0
        await faces.rt.advance(3600)
        r = await faces.adopt(faces.native_b, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        assert r.status_code == 409, r.text


@pytest.mark.parametrize("gen", [Gen1, Gen2])
async def test_a_delayed_timed_switch_that_falls_due_while_gone_runs_when_back(
    faces: Faces, gen: type[Gen1 | Gen2]
) -> None:
    async with gen() as plug:
        r = await faces.adopt(faces.native, protocol=plug_protocol(plug), mqtt_id=plug.mqtt_id)
        dev = r.json()["id"]
        await until(lambda: faces.online(dev))
        await until(lambda: faces.history(dev))  # (its first report is in)
        r = await faces.client.post(f"/api/v1/devices/{dev}/channels/0/switch",
                                    headers=faces.native,
                                    json={"action": "on", "delay": 60, "duration": 30})  # fmt: skip
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        assert (await faces.device(dev))["channels"][0]["toggle_at"] is not None
        await plug.say("online", "false")
        await until(lambda: faces.offline(dev))
        await faces.rt.advance(61)
        assert not plug.on  # gone: nothing sent
        await plug.say("online", "true")
        await until(lambda: plug.on)
        await until(lambda: faces.relay(dev))
        await faces.rt.advance(29)
        assert plug.on or isinstance(plug, Gen2)  # (a Gen2 counts its toggle_after itself)
        if isinstance(plug, Gen1):
            await faces.rt.advance(1)
            await until(lambda: not plug.on)
            await until(lambda: _not_on(faces, dev))
            relays = [(s["reason"], s["data"]["on"]) for s in await faces.history(dev)
                      if s["kind"] == "relay"]  # fmt: skip
            assert relays[-2:] == [("timer", True), ("auto", False)]
        else:
            sets = [json.loads(p)["params"] for t, p in plug.received if b"Switch.Set" in p]
            assert sets == [{"id": 0, "on": True, "toggle_after": 30}]


async def test_the_sim_routes_refuse_a_real_device_with_400(faces: Faces) -> None:
    async with Gen1() as plug:
        r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=plug.mqtt_id)
        dev = r.json()["id"]
        await until(lambda: faces.online(dev))
        c, h = faces.client, faces.native
        for r in (
            await c.post(f"/api/v1/sim/devices/{dev}/power-cycle", headers=h),
            await c.post(f"/api/v1/sim/devices/{dev}/online", headers=h, json={"online": False}),
            await c.put(f"/api/v1/sim/devices/{dev}/load", headers=h, json={"watts": 5}),
        ):
            assert_problem(r, 400, "real device")
        assert await faces.online(dev)


async def test_a_simulated_plug_whose_derived_mqtt_id_a_real_device_has_gets_another(
    faces: Faces,
) -> None:
    """A simulated plug's MQTT id is 6 hex digits of a digest of its serial (as a Gen1's):
    when an adopted plug has that id, the twin is given the next free one, of the same form,
    so the two never share a broker session."""
    serial = "SPG-TWIN-0001"
    twin_id = twinwire.mqtt_id(Device(0, 0, serial, "SHPLG-1", serial, 0.0))
    r = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=twin_id)
    assert r.status_code == 201, r.text
    csv = f"serial,model,name,tags\n{serial},SHPLG-1,,\nSPG-TWIN-0002,SHPLG-1,,\n"
    headers = {**faces.native_b, "Content-Type": "text/csv"}
    r = await faces.client.post("/api/v1/devices:import", content=csv, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["refused"] == []
    twins = {d.serial: d for d in faces.rt.engine.all_devices() if d.simulated}
    chosen = twinwire.mqtt_id(twins[serial])
    assert chosen != twin_id and re.fullmatch(r"shellyplug-[0-9A-F]{6}", chosen)
    again = await faces.adopt(faces.native, protocol="shelly-gen1", mqtt_id=chosen)
    assert_problem(again, 409, "adopted already")
