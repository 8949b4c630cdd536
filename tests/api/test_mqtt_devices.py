"""Real Shelly devices over the machine's Mosquitto: adopted, then used through every face.

The devices are fakes driven from the test with raw MQTT (aiomqtt), speaking the topics
and payloads real Gen1 and Gen2 Shellies speak; the server is the real app with
`link=mqtt://127.0.0.1:1883` on a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.runtime import Runtime
from switchgear.settings import Settings

pytestmark = pytest.mark.mqtt

BROKER = ("127.0.0.1", 1883)
SECRET = "test-secret-key-of-at-least-32-bytes"


def require_broker() -> None:
    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError as err:
        pytest.skip(f"Mosquitto at {BROKER[0]}:{BROKER[1]} unreachable: {err}")


async def until(check: Callable[[], Awaitable[bool] | bool], seconds: float = 5.0) -> None:
    """Wait (bounded) for a message to cross the real broker."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        ok = check()
        if not isinstance(ok, bool):
            ok = await ok
        if ok:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


class FakeShelly:
    """A device on the broker: its own client, last will, and the firmware's answers."""

    def __init__(
        self, mqtt_id: str, prefix: str, will_topic: str, broker: tuple[str, int] = BROKER
    ) -> None:
        self.mqtt_id, self.prefix = mqtt_id, prefix
        self.on = False
        self.power = "42.5"
        self.received: list[tuple[str, bytes]] = []
        will = aiomqtt.Will(will_topic, b"false", qos=1)
        self.client = aiomqtt.Client(*broker, identifier=mqtt_id, will=will)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeShelly:
        await self.client.__aenter__()
        for topic in self.topics():
            await self.client.subscribe(topic, qos=1)
        self._task = asyncio.get_running_loop().create_task(self._serve())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await self.client.__aexit__(None, None, None)  # a clean disconnect: no last will
        self._task.cancel()  # (aiomqtt may swallow a cancel while awaiting a PUBACK)
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task

    async def _serve(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.received.append((m.topic.value, payload))
            await self.handle(m.topic.value, payload)

    async def say(self, topic: str, payload: str | dict[str, Any]) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        await self.client.publish(f"{self.prefix}/{topic}", body.encode(), qos=1)

    def topics(self) -> list[str]:
        raise NotImplementedError

    async def handle(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError


class Gen1(FakeShelly):
    """A Shelly Plug (SHPLG-1), firmware 1.x."""

    def __init__(self, mqtt_id: str | None = None, broker: tuple[str, int] = BROKER) -> None:
        mqtt_id = mqtt_id or f"shellyplug-{secrets.token_hex(3).upper()}"
        super().__init__(mqtt_id, f"shellies/{mqtt_id}", f"shellies/{mqtt_id}/online", broker)

    def topics(self) -> list[str]:
        return [f"{self.prefix}/relay/0/command", f"{self.prefix}/command", "shellies/command"]

    async def handle(self, topic: str, payload: bytes) -> None:
        text = payload.decode()
        if topic.endswith("/relay/0/command"):
            self.on = text == "on" or (text == "toggle" and not self.on)
        elif text != "update":
            return
        await self.report()

    async def report(self) -> None:
        await self.say("relay/0", "on" if self.on else "off")
        await self.say("relay/0/power", self.power if self.on else "0.00")
        await self.say("relay/0/energy", "600")


class Gen2(FakeShelly):
    """A Shelly Plus Plug S, JSON-RPC over MQTT."""

    def __init__(self, mqtt_id: str | None = None) -> None:
        mqtt_id = mqtt_id or f"shellyplusplugs-{secrets.token_hex(6)}"
        super().__init__(mqtt_id, mqtt_id, f"{mqtt_id}/online")

    def topics(self) -> list[str]:
        return [f"{self.prefix}/rpc"]

    def status(self) -> dict[str, Any]:
        return {"id": 0, "source": "MQTT", "output": self.on,
                "apower": float(self.power) if self.on else 0.0, "voltage": 230.1,
                "current": 0.2 if self.on else 0.0,
                "aenergy": {"total": 12.5, "by_minute": [0, 0, 0], "minute_ts": 1}}  # fmt: skip

    async def handle(self, topic: str, payload: bytes) -> None:
        req = json.loads(payload)
        was_on = self.on
        reply: dict[str, Any] = {"id": req["id"], "src": self.mqtt_id, "dst": req["src"]}
        if req["method"] == "Switch.Set":
            reply["result"] = {"was_on": self.on}
            self.on = req["params"]["on"]
        elif req["method"] == "Switch.GetStatus":
            reply["result"] = self.status()
        else:
            reply["error"] = {"code": 404, "message": f"No handler for {req['method']}"}
        await self.client.publish(f"{req['src']}/rpc", json.dumps(reply).encode(), qos=1)
        if self.on == was_on:
            return  # a notification tells a change only (a state request's answer is its own)
        params = {"ts": 1.0, "switch:0": self.status()}
        await self.say("events/rpc", {"src": self.mqtt_id, "dst": req["src"],
                                      "method": "NotifyStatus", "params": params})  # fmt: skip


@dataclass
class Server:
    rt: Runtime
    client: httpx.AsyncClient
    token_a: str
    token_b: str
    smartplug: str  # account A's smart-plug access token

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token_a}"}

    async def adopt(self, protocol: str, mqtt_id: str, token: str | None = None,
                    **extra: str) -> httpx.Response:  # fmt: skip
        body = {"protocol": protocol, "mqtt_id": mqtt_id, "name": "kettle", **extra}
        return await self.client.post("/api/v1/devices", json=body, headers=self.auth(token))

    async def device(self, device_id: int) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/devices/{device_id}", headers=self.auth())
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def switch(self, device_id: int, **body: Any) -> httpx.Response:
        path = f"/api/v1/devices/{device_id}/channels/0/switch"
        return await self.client.post(path, json=body, headers=self.auth())

    async def plug_api(self, path: str, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.smartplug}"}
        return await self.client.post(path, json=body, headers=headers)

    async def history(self, device_id: int) -> list[dict[str, Any]]:
        r = await self.client.get(f"/api/v1/devices/{device_id}/history", headers=self.auth())
        return list(r.json()["statuses"])


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    require_broker()
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                        link=f"mqtt://{BROKER[0]}:{BROKER[1]}", command_timeout_s=5)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        assert rt.mqtt is not None
        await until(lambda: rt.mqtt is not None and rt.mqtt.transport.connected)
        a = await rt.auth.create_account("a@example.com", "Account A", "correct horse A")
        b = await rt.auth.create_account("b@example.com", "Account B", "correct horse B")
        _, token_a = await rt.auth.issue(a.id, KIND_NATIVE, 3600.0)
        _, token_b = await rt.auth.issue(b.id, KIND_NATIVE, 3600.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            login = {"client_id": "mclimate", "client_secret": "mclimate_core",
                     "username": "a@example.com", "password": "correct horse A"}  # fmt: skip
            r = await client.post("/v1/auth/login", json=login)
            assert r.status_code == 200, r.text
            yield Server(rt, client, token_a, token_b, r.json()["auth"]["access_token"])


async def test_a_gen1_plug_is_adopted_and_used_through_the_native_and_smartplug_faces(
    server: Server,
) -> None:
    async with Gen1() as plug:
        r = await server.adopt("shelly-gen1", plug.mqtt_id, serial=f"S{plug.mqtt_id[-6:]}")
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["model"] == "SHPLG-1" and made["family"] == "plug"
        assert made["serial"] == f"S{plug.mqtt_id[-6:]}"
        dev = made["id"]
        await until(lambda: _online(server, dev))

        r = await server.switch(dev, action="on")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "done"
        assert (f"shellies/{plug.mqtt_id}/relay/0/command", b"on") in plug.received
        shown = await server.device(dev)
        assert shown["online"] and shown["channels"][0]["on"]

        async def fetch_power() -> bool:
            r = await server.plug_api("/provider/fetch", serial_number=made["serial"])
            return bool(r.json()["provider"] == {"online": True, "power": [42.5]})

        await until(fetch_power)

        r = await server.plug_api("/provider/send", serial_number=made["serial"],
                                  command="switch_on_off", state="off")  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["provider"]["isok"] is True and r.json()["provider"]["code"] == "SHPLG-1"
        assert not plug.on
        assert not (await server.device(dev))["channels"][0]["on"]

        statuses = await server.history(dev)
        relays = [(s["reason"], s["data"]["on"]) for s in statuses if s["kind"] == "relay"]
        assert relays[-2:] == [("api", True), ("api", False)]
        assert any(s["kind"] == "update" and s["data"]["power"] == 42.5 for s in statuses)
        # settings are the device's own (set over HTTP on a Gen1): a clear 400, nothing stored
        r = await server.plug_api("/provider/send", serial_number=made["serial"],
                                  command="default_switch", state="on")  # fmt: skip
        assert r.status_code == 400 and "settings" in r.json()["detail"]


async def _online(server: Server, dev: int) -> bool:
    return bool((await server.device(dev))["online"])


async def test_a_gen1_timed_switch_is_run_by_the_server_on_its_clock(server: Server) -> None:
    async with Gen1() as plug:
        dev = (await server.adopt("shelly-gen1", plug.mqtt_id)).json()["id"]
        await until(lambda: _online(server, dev))
        r = await server.switch(dev, action="on", duration=60)
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        assert (await server.device(dev))["channels"][0]["toggle_at"] is not None
        await server.rt.advance(59)
        assert plug.on
        await server.rt.advance(1)
        await until(lambda: not plug.on)
        await until(lambda: _relay_is(server, dev, False))
        statuses = await server.history(dev)
        relays = [(s["reason"], s["data"]["on"]) for s in statuses if s["kind"] == "relay"]
        assert relays[-1] == ("auto", False)
        assert (await server.device(dev))["channels"][0]["toggle_at"] is None


async def _relay_is(server: Server, dev: int, on: bool) -> bool:
    return bool((await server.device(dev))["channels"][0]["on"] is on)


async def test_last_will_is_offline_on_every_face_and_return_resyncs(server: Server) -> None:
    async with Gen1() as plug:
        made = (await server.adopt("shelly-gen1", plug.mqtt_id)).json()
        dev, serial = made["id"], made["serial"]
        await until(lambda: _energy(server, dev, 10.0))  # its whole report is in (600 W·min)
        # the broker publishes the device's last will when its connection dies
        await plug.say("online", "false")
        await until(lambda: _not(_online(server, dev)))
        r = await server.plug_api("/provider/fetch", serial_number=serial)
        assert r.json()["provider"] == {"online": False, "power": []}
        r = await server.switch(dev, action="on")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        command = await server.client.get(f"/api/v1/commands/{r.json()['command_id']}",
                                          headers=server.auth())  # fmt: skip
        assert command.json()["state"] == "failed"
        r = await server.plug_api("/provider/send", serial_number=serial,
                                  command="switch_on_off", state="on")  # fmt: skip
        assert r.status_code == 503
        assert not plug.on  # nothing reached the device
        # back: switched on by hand meanwhile; it says hello and the shadow follows
        plug.on = True
        await plug.say("online", "true")
        await until(lambda: _relay_is(server, dev, True))
        assert (await server.device(dev))["online"]
        kinds = [(s["kind"], s["reason"]) for s in await server.history(dev)]
        assert ("connection", "offline") in kinds and kinds.count(("connection", "online")) == 2


async def _energy(server: Server, dev: int, wh: float) -> bool:
    meters = (await server.device(dev))["meters"]
    return bool(meters and meters[0]["energy_wh"] == wh)


async def _not(x: Awaitable[bool]) -> bool:
    return not await x


async def test_a_gen2_plug_is_switched_by_rpc_and_reports_its_power(server: Server) -> None:
    async with Gen2() as plug:
        r = await server.adopt("shelly-gen2", plug.mqtt_id)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["model"] == "SNPL-00112EU" and made["serial"] == plug.mqtt_id
        dev = made["id"]
        await until(lambda: _online(server, dev))
        events: list[dict[str, Any]] = []  # what /api/v1/events streams: the engine's bus
        stream = server.rt.bus.subscribe("device/")
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # (the subscription starts with the first read)
        r = await server.switch(dev, action="on", duration=30)
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        events.append((await first)[1])
        assert events[0]["device_id"] == dev and events[0]["kind"] == "relay"
        assert events[0]["reason"] == "api" and events[0]["state"]["channels"][0]["on"]
        await stream.aclose()
        sets = [json.loads(p) for t, p in plug.received if b"Switch.Set" in p]
        assert sets[-1]["params"] == {"id": 0, "on": True, "toggle_after": 30}
        assert plug.on
        r = await server.plug_api("/provider/fetch", serial_number=plug.mqtt_id)
        await until(lambda: _power(server, plug.mqtt_id, 42.5))
        shown = await server.device(dev)
        assert shown["meters"][0]["voltage_v"] == 230.1 and shown["meters"][0]["energy_wh"] == 12.5


async def _power(server: Server, serial: str, watts: float) -> bool:
    r = await server.plug_api("/provider/fetch", serial_number=serial)
    return bool(r.json()["provider"]["power"] == [watts])


async def test_an_mqtt_id_is_adopted_once_across_accounts(server: Server) -> None:
    async with Gen1() as plug:
        assert (await server.adopt("shelly-gen1", plug.mqtt_id)).status_code == 201
        r = await server.adopt("shelly-gen1", plug.mqtt_id, token=server.token_b)
        assert r.status_code == 409
        assert r.json()["detail"] == "this device is adopted already"
        mine = await server.client.get("/api/v1/devices", headers=server.auth(server.token_b))
        assert mine.json() == []


@pytest.mark.parametrize(
    ("protocol", "device_id", "typed"),
    [("shelly-gen1", f"shellyplug-s-{secrets.token_hex(3).upper()}", str.lower),
     ("shelly-gen2", f"shellyplusplugs-{secrets.token_hex(6)}", str.upper)],
)  # fmt: skip
async def test_an_mqtt_id_typed_in_the_other_case_adopts_the_device_as_it_names_itself(
    server: Server, protocol: str, device_id: str, typed: Callable[[str], str]
) -> None:
    """A Gen1 names itself with its MAC's digits upper case, a Gen2 lower case, on every
    topic: the id as read off a label or typed in the other case is the same device."""
    fake = Gen1(device_id) if protocol == "shelly-gen1" else Gen2(device_id)
    async with fake as plug:
        r = await server.adopt(protocol, typed(device_id))
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["serial"] == device_id  # (by default the MQTT id)
        await until(lambda: _online(server, made["id"]))
        assert (await server.device(made["id"]))["extra"]["mqtt_id"] == device_id
        r = await server.adopt(protocol, device_id)  # as it names itself: the same device
        assert r.status_code == 409, r.text
        assert plug.received


async def test_bad_adoption_requests_are_400_and_store_nothing(server: Server) -> None:
    for body in ({"protocol": "shelly-gen3", "mqtt_id": "x"},
                 {"protocol": "shelly-gen1", "mqtt_id": "shellies/#"},
                 {"protocol": "shelly-gen1"}):  # fmt: skip
        r = await server.client.post("/api/v1/devices", json=body, headers=server.auth())
        assert r.status_code == 400, body
    assert (await server.client.get("/api/v1/devices", headers=server.auth())).json() == []
