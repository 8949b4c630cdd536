"""The Automate Green power controller API as its clients call it (seed 002)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import pytest

from switchgear.core.model import Device
from tests.api.test_mqtt_devices import until
from tests.conftest import World, add
from tests.deployments import on_every_deployment

world = on_every_deployment  # the fixture: each test runs embedded and scale-out

MODEL = "power-controller-v10"
SEED_FFR = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8, "periods": 10,
            "delay": 10}  # fmt: skip


@dataclass
class Cloud:
    w: World
    token: str
    token_b: str
    pc: Device
    pc_id: str
    pc_b_id: str

    def h(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def command(self, body: Any, pc_id: str | None = None, **kw: Any) -> Any:
        return await self.w.client.post(
            f"/v1/devices/{pc_id or self.pc_id}/command", json=body, headers=self.h(), **kw
        )

    async def put(self, body: Any, pc_id: str | None = None, **kw: Any) -> Any:
        return await self.w.client.put(
            f"/v1/devices/{pc_id or self.pc_id}", json=body, headers=self.h(), **kw
        )

    async def statuses(self, token: str | None = None, **params: str) -> list[dict[str, Any]]:
        r = await self.w.client.get("/v1/statuses", params=params, headers=self.h(token))
        assert r.status_code == 200, r.text
        return list(r.json()["statuses"])

    async def advance(self, seconds: float) -> None:
        r = await self.w.client.post(
            "/api/v1/sim/clock/advance", json={"seconds": seconds}, headers=self.w.auth()
        )
        assert r.status_code == 200, r.text

    def relay_on(self) -> bool:
        return self.w.rt.engine.shadow(self.pc.id).channels[0].on


async def signin(w: World, email: str, password: str, **extra: Any) -> Any:
    return await w.client.post(
        "/v1/signin", json={"user": {"email": email, "password": password}, **extra}
    )


@pytest.fixture
async def cloud(world: World) -> Cloud:
    w = world
    pc = await add(w.rt, w.plug_a.account_id, "PC-TESTAAAA01-001", MODEL)
    await add(w.rt, w.plug_b.account_id, "PC-TESTBBBB01-001", MODEL)
    token = (await signin(w, "a@example.com", "correct horse A")).json()["token"]
    token_b = (await signin(w, "b@example.com", "correct horse B")).json()["token"]
    ids_a = [
        d["device"]["id"] for d in (await _devices(w, token)) if d["device"]["sn"] == pc.serial
    ]
    ids_b = [d["device"]["id"] for d in await _devices(w, token_b)]
    await w.settle()
    return Cloud(w, token, token_b, pc, ids_a[0], ids_b[-1])


async def _devices(w: World, token: str) -> list[dict[str, Any]]:
    r = await w.client.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return list(r.json()["devices"])


# --- authentication -------------------------------------------------------------------


async def test_signin_with_the_seed_form_example_gives_a_year_token(world: World) -> None:
    r = await world.client.post(
        "/v1/signin",
        data={
            "user[email]": "a@example.com",
            "user[password]": "correct horse A",
            "expires": "31536000",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Sign in successful"
    assert body["user"] == {"email": "a@example.com", "name": "Account A"}
    claims = pyjwt.decode(body["token"], options={"verify_signature": False})
    assert pyjwt.get_unverified_header(body["token"])["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 31_536_000 and claims["jti"]


async def test_signin_as_json_defaults_to_two_weeks_and_keeps_desc(world: World) -> None:
    r = await signin(world, "a@example.com", "correct horse A", desc="my script")
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 14 * 86_400
    listed = await world.client.get("/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert [t["desc"] for t in listed.json()["tokens"]] == ["my script"]
    assert listed.json()["tokens"][0]["expires"].endswith(".000Z")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user": {"email": "a@example.com", "password": "wrong password"}}, 401),
        ({"user": {"email": "nobody@example.com", "password": "whatever1"}}, 401),
        ({"user": {"email": "a@example.com"}}, 400),
        ({"email": "a@example.com", "password": "correct horse A"}, 400),
        ({"user": {"email": "a@example.com", "password": "correct horse A"}, "expires": -5}, 400),
    ],
)
async def test_signin_failures(world: World, body: dict[str, Any], status: int) -> None:
    r = await world.client.post("/v1/signin", json=body)
    assert r.status_code == status
    assert set(r.json()) == {"message"}


async def test_the_token_works_in_each_documented_place(cloud: Cloud) -> None:
    c, t = cloud.w.client, cloud.token
    assert (await c.get("/v1/devices", headers={"Authorization": f"Bearer {t}"})).status_code == 200
    assert (
        await c.get("/v1/devices", headers={"Authorization": f"Bearer: {t}"})
    ).status_code == 200
    assert (await c.get(f"/v1/devices?access_token={t}")).status_code == 200
    for field in ("access_token", "token"):
        r = await c.post(
            f"/v1/devices/{cloud.pc_id}/command",
            data={field: t, "command[name]": "off"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["responseCodes"] == [103]
        r = await c.put(f"/v1/devices/{cloud.pc_id}", data={field: t, "info[samplePeriod]": "600"})
        assert r.status_code == 200, r.text


async def test_the_token_works_nowhere_else(cloud: Cloud) -> None:
    c, t = cloud.w.client, cloud.token
    url = f"/v1/devices/{cloud.pc_id}/command"
    refused = [
        await c.post(f"{url}?access_token={t}", json={"command": {"name": "off"}}),
        await c.post(url, json={"access_token": t, "command": {"name": "off"}}),
        await c.post(url, json={"token": t, "command": {"name": "off"}}),
        await c.get("/v1/devices", headers={"X-Access-Token": t}),
        await c.get("/v1/devices", headers={"Authorization": t}),
        await c.get("/v1/devices", headers={"Authorization": f"Bearer {t}x"}),
        await c.get("/v1/devices", headers={"Authorization": f"Bearer {cloud.w.token_a}"}),
        await c.get("/v1/devices", headers={"Cookie": f"access_token={t}"}),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert all(r.json() == {"message": "Unauthorized"} for r in refused)
    assert cloud.relay_on() is True


@pytest.mark.embedded_only("advances the manual clock")
async def test_revoked_and_expired_tokens_are_refused(cloud: Cloud) -> None:
    c = cloud.w.client
    r = await signin(cloud.w, "a@example.com", "correct horse A", expires=60)
    short = r.json()["token"]
    jti = pyjwt.decode(short, options={"verify_signature": False})["jti"]
    assert (await c.get("/v1/devices", headers=cloud.h(short))).status_code == 200
    other = await c.delete(f"/v1/tokens/{jti}", headers=cloud.h(cloud.token_b))
    assert other.status_code == 404  # another account's token is not there for it
    r = await c.delete(f"/v1/tokens/{jti}", headers=cloud.h())
    assert r.status_code == 200 and r.json() == {"message": "Token revoked"}
    assert (await c.get("/v1/devices", headers=cloud.h(short))).status_code == 401
    listed = (await c.get("/v1/tokens", headers=cloud.h())).json()["tokens"]
    assert jti not in [t["id"] for t in listed]
    r = await signin(cloud.w, "a@example.com", "correct horse A", expires=60)
    expiring = r.json()["token"]
    await cloud.advance(61)
    assert (await c.get("/v1/devices", headers=cloud.h(expiring))).status_code == 401


async def test_a_tampered_or_unsigned_token_is_refused(cloud: Cloud) -> None:
    claims = pyjwt.decode(cloud.token, options={"verify_signature": False})
    forged = pyjwt.encode(claims, "another-key-of-at-least-thirty-two-bytes", algorithm="HS256")
    none = pyjwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    for token in (forged, none):
        r = await cloud.w.client.get("/v1/devices", headers=cloud.h(token))
        assert r.status_code == 401


# --- devices ---------------------------------------------------------------------------


@pytest.mark.embedded_only("advances the manual clock")
async def test_adding_the_seed_device_shows_initializing_then_active(cloud: Cloud) -> None:
    c = cloud.w.client
    r = await c.post("/v1/devices", data={"sn": "PC-ZXCVBNMASDF-001", "country": "US"},
                     headers=cloud.h())  # fmt: skip
    assert r.status_code == 200, r.text
    device = r.json()["device"]
    assert device["sn"] == "PC-ZXCVBNMASDF-001" and device["country"] == "US"
    assert device["type"] == {
        "id": MODEL,
        "profile": "power-controller",
        "desc": "Power Controller",
    }
    assert device["status"] == {"state": "Initializing"}
    assert len(device["id"]) == 11 and len(device["address"]) == 24
    await cloud.advance(6)
    got = (await c.get(f"/v1/devices/{device['id']}", headers=cloud.h())).json()["device"]
    assert got["status"]["state"] == "Active"
    assert got["info"]["ffr"]["enabled"] is False and got["info"]["flowmeter"] == {"type": "none"}


@pytest.mark.parametrize(
    ("sn", "country", "message"),
    [
        ("PC-TESTAAAA01-001", "US", "Invalid serial number"),  # registered: says not whose
        ("PC-TESTBBBB01-001", "US", "Invalid serial number"),
        ("XX-123", "US", "Invalid serial number"),
        ("PC-ÜNICODE0000-001", "US", "Invalid serial number"),
        ("PC-GOODSERIAL1-001", "XX", "Invalid country code"),
        ("", "US", "sn is required"),
    ],
)
async def test_bad_registrations_are_400(cloud: Cloud, sn: str, country: str, message: str) -> None:
    r = await cloud.w.client.post(
        "/v1/devices", json={"sn": sn, "country": country}, headers=cloud.h()
    )
    assert r.status_code == 400 and r.json() == {"message": message}


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_serial_no_controller_answers_stays_initializing(cloud: Cloud) -> None:
    cloud.w.rt.settings.simulate_new_devices = False
    c = cloud.w.client
    r = await c.post("/v1/devices", json={"sn": "PC-NOBODYHOME1-001", "country": "CA"},
                     headers=cloud.h())  # fmt: skip
    pc_id = r.json()["device"]["id"]
    await cloud.advance(3600)
    got = (await c.get(f"/v1/devices/{pc_id}", headers=cloud.h())).json()["device"]
    assert got["status"] == {"state": "Initializing"}
    r = await cloud.command({"command": {"name": "on"}}, pc_id)
    assert r.status_code == 503 and r.json() == {"message": "Device unreachable"}


async def test_the_list_holds_every_device_of_the_account_in_this_shape(cloud: Cloud) -> None:
    devices = [d["device"] for d in await _devices(cloud.w, cloud.token)]
    profiles = sorted(d["type"]["profile"] for d in devices)
    assert profiles == ["power-controller", "power-strip", "smart-plug"]
    pc = next(d for d in devices if d["id"] == cloud.pc_id)
    assert pc["status"]["state"] == "Active"
    info = pc["status"]["info"]
    assert {"duration", "current", "voltage", "power", "temperature", "frequency", "flow", "on",
            "toggleIn"} <= set(info)  # fmt: skip
    assert pc["status"]["date"].endswith(".000Z")
    assert cloud.pc_b_id not in [d["id"] for d in devices]


@pytest.mark.embedded_only("advances the manual clock")
async def test_refresh_status_sends_an_api_update(cloud: Cloud) -> None:
    await cloud.advance(300)
    r = await cloud.w.client.post(f"/v1/devices/{cloud.pc_id}/status", headers=cloud.h())
    assert r.status_code == 200, r.text
    assert r.json()["responseCodes"] == [100]
    status = r.json()["status"]
    assert status["type"] == "update" and status["reason"] == "api"
    assert status["info"]["duration"] == 300 and status["info"]["frequency"] == pytest.approx(
        60, abs=0.02
    )
    updates = [s for s in await cloud.statuses(device=cloud.pc_id) if s["type"] == "update"]
    assert updates[-1]["reason"] == "api" and updates[-1]["info"]["duration"] == 300
    assert isinstance(updates[-1]["info"]["voltage"], int | float)


# --- commands ----------------------------------------------------------------------------


@pytest.mark.embedded_only("advances the manual clock")
@pytest.mark.parametrize(
    ("command", "codes", "on_after"),
    [
        ({"name": "on"}, [102], True),
        ({"name": "off"}, [103], False),
        ({"name": "on", "delay": 60}, [106], True),
        ({"name": "off", "delay": 60}, [107], False),
        ({"name": "on_for", "time": 60}, [104], False),
        ({"name": "off_for", "time": 60}, [105], True),
        # the 4.5 kW element uses the 50 Wh in 40 s: the relay opens until the hour is over
        ({"name": "limit_power", "power": 50, "time": 3600}, [115], False),
    ],
)
async def test_each_seed_command_answers_its_code(
    cloud: Cloud, command: dict[str, Any], codes: list[int], on_after: bool
) -> None:
    r = await cloud.command({"command": command})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["responseCodes"] == codes
    assert body["status"]["type"] == "function" and body["status"]["info"]["responseCodes"] == codes
    await cloud.advance(60)
    assert cloud.relay_on() is on_after


@pytest.mark.embedded_only("advances the manual clock")
async def test_on_at_and_off_at_fire_at_their_unix_time(cloud: Cloud) -> None:
    now = cloud.w.rt.clock.now()
    r = await cloud.command({"command": {"name": "off_at", "time": int(now) + 120}})
    assert r.json()["responseCodes"] == [107]
    await cloud.advance(119 - (now - int(now)))
    assert cloud.relay_on() is True
    await cloud.advance(1)
    assert cloud.relay_on() is False
    r = await cloud.command({"command": {"name": "on_at", "time": int(now) - 10}})
    assert r.status_code == 400 and r.json()["responseCodes"] == [-992]


@pytest.mark.embedded_only("advances the manual clock")
@pytest.mark.parametrize(
    "body",
    [
        {"command": {"name": "explode"}},
        {"command": {"name": "on_for", "time": -60}},
        {"command": {"name": "off_for", "delay": "soon"}},
        {"command": {"name": "limit_power", "power": -50, "time": 3600}},
        {"command": {"name": "on", "delay": 1e308 * 10}},  # not JSON: no device code
    ],
)
async def test_bad_command_values_get_negative_codes_and_change_nothing(
    cloud: Cloud, body: dict[str, Any]
) -> None:
    r = await cloud.w.client.post(
        f"/v1/devices/{cloud.pc_id}/command",
        content=json.dumps(body).replace("Infinity", "1e999"),
        headers={**cloud.h(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    if "1e999" in r.request.content.decode():  # refused as a body, before any command
        assert r.json() == {"message": "request body is not valid JSON"}
    else:
        assert r.json()["responseCodes"][0] < 0
    await cloud.advance(7200)
    assert cloud.relay_on() is True


@pytest.mark.parametrize(
    "raw", ['{"command": ', "[]", '{"command": "on"}', '{"command": {"name": 5}}', "\xff"]
)
async def test_malformed_bodies_are_400_with_a_message(cloud: Cloud, raw: str) -> None:
    r = await cloud.w.client.post(
        f"/v1/devices/{cloud.pc_id}/command",
        content=raw.encode("latin-1"),
        headers={**cloud.h(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and set(r.json()) == {"message"}


# --- configuration -------------------------------------------------------------------------


async def test_each_seed_configuration_answers_its_code(cloud: Cloud) -> None:
    tuf = {"type": "tuf2000m", "pipeOuterDiameter": 22.225, "pipeWallThickness": 0.8128,
           "pipeType": "copper"}  # fmt: skip
    capacity = {"enable": True, "maxCapacity": 100, "minCapacity": 50, "lossPerLiter": 5.5,
                "lossPerIdleMinute": 1.3, "gainPerWattHour": 2.7}  # fmt: skip
    cases = [
        ({"ffr": SEED_FFR}, [108]),
        ({"ffr": {"enable": False}}, [109]),
        ({"flowmeter": {"type": "none"}}, [110]),
        ({"flowmeter": tuf}, [112]),
        ({"capacity": capacity}, [114]),
        ({"capacity": {"enable": False}}, [113]),
    ]
    for info, codes in cases:
        r = await cloud.put({"info": info})
        assert r.status_code == 200, r.text
        assert r.json()["responseCodes"] == codes
    got = (await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())).json()
    info = got["device"]["info"]
    assert info["flowmeter"] == tuf
    assert info["ffr"] == {"enabled": False, "tripThreshold": 59.7, "returnThreshold": 59.8,
                           "periods": 10, "delay": 10, "maxBackOff": 0}  # fmt: skip
    assert info["capacity"]["enabled"] is False and info["capacity"]["gainPerWattHour"] == 2.7
    assert info["powerLimit"] == {"endsAt": None, "power": None}


async def test_the_seed_euf4315k_example_is_malformed_json_and_gets_a_clear_400(
    cloud: Cloud,
) -> None:
    raw = '{"info": {"flowmeter":{"type":"euf4315k"} }'  # as printed in the document
    r = await cloud.w.client.put(
        f"/v1/devices/{cloud.pc_id}", content=raw,
        headers={**cloud.h(), "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 400 and r.json() == {"message": "request body is not valid JSON"}
    fixed = await cloud.put({"info": {"flowmeter": {"type": "euf4315k"}}})
    assert fixed.json()["responseCodes"] == [111]


async def test_bad_configuration_gets_codes_or_a_message_and_changes_nothing(cloud: Cloud) -> None:
    r = await cloud.put({"info": {"ffr": {**SEED_FFR, "delay": -1}, "samplePeriod": 1}})
    assert r.status_code == 400 and r.json()["responseCodes"] == [-994, -985]
    r = await cloud.put({"info": {"capacity": {"enable": True, "maxCapacity": 10,
                                               "minCapacity": 50}}})  # fmt: skip
    assert r.json()["responseCodes"] == [-997]
    r = await cloud.put({"info": {"ffr": {"enable": True, "tripThreshold": "low"}}})
    assert r.status_code == 400 and set(r.json()) == {"message"}
    r = await cloud.put({"info": {"colour": "blue"}})
    assert r.status_code == 400 and "colour" in r.json()["message"]
    got = (await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())).json()
    assert got["device"]["info"]["ffr"]["enabled"] is False
    assert got["device"]["info"]["samplePeriod"] == 900


@pytest.mark.embedded_only("advances the manual clock")
async def test_schedule_replaces_all_and_runs(cloud: Cloud) -> None:
    now = int(cloud.w.rt.clock.now())
    entries = [{"name": "off", "when": now + 60, "repeat": 0},
               {"name": "on", "when": now + 120, "repeat": 0}]  # fmt: skip
    r = await cloud.put({"schedule": entries})
    assert r.json()["responseCodes"] == [117, 117]
    r = await cloud.put({"schedule": [entries[0]]})
    assert r.json()["responseCodes"] == [117]
    await cloud.advance(180)
    assert cloud.relay_on() is False  # the replaced `on` entry is gone
    r = await cloud.put({"info": {"schedule": [entries[0]] * 40}})
    assert r.json()["responseCodes"] == [-985]
    assert (await cloud.put({"schedule": []})).json()["responseCodes"] == [119]


# --- async ---------------------------------------------------------------------------------


async def _settle(cloud: Cloud) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    if cloud.w.shape != "embedded":  # the background request's answer crosses the broker

        def sent() -> bool:
            return not any(t.get_name().startswith("pc-async-") for t in cloud.w.rt.tasks)

        await until(sent)
    await cloud.w.rt.journal.flush()


async def test_async_answers_202_and_records_the_function_status(cloud: Cloud) -> None:
    r = await cloud.command({"command": {"name": "off"}}, params={"async": "true"})
    assert r.status_code == 202 and r.content == b""
    await _settle(cloud)
    assert cloud.relay_on() is False
    functions = [s for s in await cloud.statuses(device=cloud.pc_id) if s["type"] == "function"]
    assert functions[-1]["reason"] == "command"
    assert functions[-1]["info"] == {"update": {"on": False}, "responseCodes": [103]}


@pytest.mark.embedded_only("advances the manual clock")
async def test_an_unreachable_controller_is_503_sync_and_kept_async_until_back(
    cloud: Cloud,
) -> None:
    w = cloud.w
    await w.client.post(f"/api/v1/sim/devices/{cloud.pc.id}/online", json={"online": False},
                        headers=w.auth())  # fmt: skip
    r = await cloud.command({"command": {"name": "off"}})
    assert r.status_code == 503 and r.json() == {"message": "Device unreachable"}
    r = await cloud.command({"command": {"name": "on_for", "time": 30}}, params={"async": "true"})
    assert r.status_code == 202
    r = await cloud.command({"command": {"name": "off"}}, params={"async": "true"})
    await _settle(cloud)
    r = await cloud.put({"info": {"samplePeriod": 300}, "persist": False}, params={"async": "true"})
    await _settle(cloud)
    assert cloud.relay_on() is True
    await w.client.post(f"/api/v1/sim/devices/{cloud.pc.id}/online", json={"online": True},
                        headers=w.auth())  # fmt: skip
    await cloud.advance(5)
    await _settle(cloud)
    assert cloud.relay_on() is False  # only the latest request was kept, and it ran
    shadow = w.rt.engine.shadow(cloud.pc.id)
    assert shadow.extra["config"]["samplePeriod"] == 900  # persist: false was not kept


# --- FFR through the API -------------------------------------------------------------------


@pytest.mark.embedded_only("advances the manual clock")
async def test_an_under_frequency_event_trips_and_returns_in_order(cloud: Cloud) -> None:
    w = cloud.w
    assert (await cloud.put({"info": {"ffr": SEED_FFR}})).json()["responseCodes"] == [108]
    start = w.rt.clock.now()
    r = await w.client.put("/api/v1/sim/grid", json={"frequency_hz": 59.6, "duration_s": 30},
                           headers=w.auth())  # fmt: skip
    assert r.status_code == 200, r.text
    await cloud.advance(1)
    assert cloud.relay_on() is False
    await cloud.advance(29)
    assert cloud.relay_on() is False
    await cloud.advance(10)
    assert cloud.relay_on() is True
    events = [
        (s["type"], s["reason"], s["info"])
        for s in await cloud.statuses(device=cloud.pc_id)
        if s["type"] in ("trigger", "relay") and s["date"] >= _iso(start)
    ]
    events = events[events.index(("trigger", "ffr", {"frequency": 59.6})) :]
    assert events[0] == ("trigger", "ffr", {"frequency": 59.6})
    assert events[1][:2] == ("relay", "ffr") and events[1][2]["on"] is False
    assert events[2][:2] == ("trigger", "ffrr") and events[2][2]["frequency"] >= 59.8
    assert events[3] == ("relay", "ffrr", {"on": False, "toggleIn": 10})
    assert events[4] == ("relay", "auto", {"on": True, "toggleIn": 0})


def _iso(ts: float) -> str:
    from switchgear.dialects.powercontroller.wire import when

    return when(ts)


# --- statuses ------------------------------------------------------------------------------


@pytest.mark.embedded_only("advances the manual clock")
async def test_statuses_default_to_the_last_day_ascending(cloud: Cloud) -> None:
    await cloud.command({"command": {"name": "off"}})
    await cloud.advance(2 * 86_400)
    await cloud.command({"command": {"name": "on"}})
    got = await cloud.statuses(device=cloud.pc_id)
    dates = [s["date"] for s in got]
    assert dates == sorted(dates)
    assert len(got) >= 96  # auto updates every 900 s over the day
    assert all(s["deviceId"] == cloud.pc_id == s["device"] for s in got)
    relays = [s for s in got if s["type"] == "relay"]
    assert [r["info"]["on"] for r in relays] == [True]  # the `off` is two days old
    assert {"id", "device", "deviceId", "date", "state", "type", "reason", "info"} == set(got[0])
    autos = [s for s in got if s["type"] == "update" and s["reason"] == "auto"]
    assert autos and all(s["info"]["duration"] == 900 for s in autos)


@pytest.mark.embedded_only("advances the manual clock")
async def test_statuses_date_forms_and_the_ten_day_limit(cloud: Cloud) -> None:
    await cloud.advance(3 * 86_400)
    now = cloud.w.rt.clock.now()
    day_before = _iso(now - 2 * 86_400)[:10]
    since = await cloud.statuses(device=cloud.pc_id, date=day_before)
    assert since[0]["date"] >= day_before
    assert len(since) > len(await cloud.statuses(device=cloud.pc_id))
    window = await cloud.statuses(
        device=cloud.pc_id, **{"date[start]": _iso(now - 3600), "date[end]": _iso(now - 1800)}
    )
    assert len(window) == 2  # two auto updates in half an hour
    r = await cloud.w.client.get(
        "/v1/statuses", headers=cloud.h(),
        params={"device": cloud.pc_id, "date[start]": "2015-08-01", "date[end]": "2015-08-15"},
    )  # fmt: skip
    assert r.status_code == 400 and "10 days" in r.json()["message"]
    r = await cloud.w.client.get("/v1/statuses", params={"date": "yesterday"}, headers=cloud.h())
    assert r.status_code == 400


@pytest.mark.embedded_only("advances the manual clock")
async def test_statuses_of_all_devices_and_of_no_other_account(cloud: Cloud) -> None:
    await cloud.advance(900)
    mine = await cloud.statuses()
    assert {s["device"] for s in mine} >= {cloud.pc_id}
    theirs = await cloud.statuses(token=cloud.token_b)
    assert cloud.pc_id not in {s["device"] for s in theirs}
    assert cloud.pc_b_id in {s["device"] for s in theirs}


# --- isolation -----------------------------------------------------------------------------


async def test_another_accounts_controller_answers_exactly_like_a_missing_one(
    cloud: Cloud,
) -> None:
    c = cloud.w.client
    for target in (cloud.pc_b_id, "doesNotExst"):
        answers = [
            await c.get(f"/v1/devices/{target}", headers=cloud.h()),
            await c.put(
                f"/v1/devices/{target}", json={"info": {"ffr": SEED_FFR}}, headers=cloud.h()
            ),
            await c.post(
                f"/v1/devices/{target}/command",
                json={"command": {"name": "off"}},
                headers=cloud.h(),
            ),
            await c.post(f"/v1/devices/{target}/status", headers=cloud.h()),
            await c.get("/v1/statuses", params={"device": target}, headers=cloud.h()),
        ]
        assert [(r.status_code, r.json()) for r in answers] == [
            (404, {"message": "Device not found"})
        ] * 5
    shadow = cloud.w.rt.engine.shadow(cloud.w.rt.engine.devices(cloud.w.plug_b.account_id)[-1].id)
    assert shadow.channels[0].on is True


async def test_reset_reboots_the_controller(cloud: Cloud) -> None:
    await cloud.command({"command": {"name": "off"}})
    r = await cloud.command({"command": {"name": "reset"}})
    assert r.status_code == 200 and r.json()["responseCodes"] == [10]
    reasons = [(s["type"], s["reason"]) for s in await cloud.statuses(device=cloud.pc_id)]
    assert reasons[-2:] == [("relay", "reboot"), ("function", "command")]
    assert cloud.relay_on() is True  # its power-on state


async def test_the_seed_statuses_query_runs_as_written(cloud: Cloud) -> None:
    r = await cloud.w.client.get(
        f"/v1/statuses?device={cloud.pc_id}&date[start]=2015-08-10T09:30&date[end]=2015-08-15",
        headers=cloud.h(),
    )
    assert r.status_code == 200 and r.json() == {"statuses": []}


@pytest.mark.embedded_only("advances the manual clock")
async def test_statuses_page_with_next(cloud: Cloud) -> None:
    await cloud.advance(86_400)
    first = await cloud.w.client.get(
        "/v1/statuses", params={"device": cloud.pc_id, "limit": "10"}, headers=cloud.h()
    )
    body = first.json()
    assert len(body["statuses"]) == 10 and "cursor=" in body["next"]
    rest = await cloud.w.client.get(body["next"], headers=cloud.h())
    later = rest.json()["statuses"]
    assert later and later[0]["date"] >= body["statuses"][-1]["date"]
    assert not {s["id"] for s in later} & {s["id"] for s in body["statuses"]}


# --- fidelity, round 2 ---------------------------------------------------------------------

SEED_CAPACITY = {"enable": True, "maxCapacity": 100, "minCapacity": 50, "lossPerLiter": 5.5,
                 "lossPerIdleMinute": 1.3, "gainPerWattHour": 2.7}  # fmt: skip


@pytest.mark.embedded_only("advances the manual clock (the scheduler's)")
async def test_capacity_cycles_between_max_and_min_for_hours_and_the_server_answers(
    cloud: Cloud,
) -> None:
    start = cloud.w.rt.clock.now()
    r = await cloud.put({"info": {"capacity": SEED_CAPACITY}})  # the seed's body as printed
    assert r.json()["responseCodes"] == [114]
    for _ in range(6 * 8):  # eight hours, ten-minute steps
        await cloud.w.rt.scheduler.advance(600)
        got = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
        assert got.status_code == 200
    assert cloud.w.rt.scheduler.loops == []
    relays = [
        s for s in await cloud.statuses(device=cloud.pc_id, date=_iso(start)[:10])
        if s["type"] == "relay" and s["reason"] != "reboot"
    ]  # fmt: skip
    reasons = [s["reason"] for s in relays]
    assert len(reasons) >= 20
    assert reasons == ["max_capacity", "min_capacity"] * (len(reasons) // 2) + (
        ["max_capacity"] if len(reasons) % 2 else []
    )
    assert [s["info"]["on"] for s in relays[:2]] == [False, True]


async def _device_status(cloud: Cloud) -> dict[str, Any]:
    r = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
    assert r.status_code == 200, r.text
    return dict(r.json()["device"]["status"])


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_scheduled_limit_power_logs_relay_timer(cloud: Cloud) -> None:
    await cloud.command({"command": {"name": "off"}})
    now = int(cloud.w.rt.clock.now())
    entry = {"name": "limit_power", "when": now + 60, "repeat": 0, "power": 100, "time": 3600}
    assert (await cloud.put({"schedule": [entry]})).json()["responseCodes"] == [117]
    await cloud.advance(90)
    relays = [s for s in await cloud.statuses(device=cloud.pc_id) if s["type"] == "relay"]
    assert (relays[-1]["reason"], relays[-1]["info"]["on"]) == ("timer", True)
    assert _epoch(relays[-1]["date"]) == now + 60


@pytest.mark.embedded_only("advances the manual clock")
@pytest.mark.parametrize("since_boot", [300, 1000])  # before and after the first update
async def test_toggle_in_counts_from_the_status_date_even_after_a_reset(
    cloud: Cloud, since_boot: int
) -> None:
    await cloud.advance(since_boot)
    due = int(cloud.w.rt.clock.now()) + 600
    assert (await cloud.command({"command": {"name": "off_at", "time": due}})).status_code == 200
    await cloud.advance(100)
    for step in ("after the command", "after a reset"):
        status = await _device_status(cloud)
        info = status["info"]
        assert info["toggleAt"] == due, step
        assert _epoch(status["date"]) + info["toggleIn"] == due, step
        await cloud.command({"command": {"name": "reset"}})
    await cloud.advance(60)
    status = await _device_status(cloud)
    assert _epoch(status["date"]) + status["info"]["toggleIn"] == due
    await cloud.advance(500)
    assert cloud.relay_on() is False  # the flip the status announced fires


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_second_timed_command_replaces_the_first_and_says_so(cloud: Cloud) -> None:
    t = int(cloud.w.rt.clock.now())
    first = await cloud.command({"command": {"name": "off_at", "time": t + 120}})
    assert first.json()["responseCodes"] == [107] and "replaces" not in first.json()["message"]
    second = await cloud.command({"command": {"name": "on_at", "time": t + 180}})
    body = second.json()
    assert body["responseCodes"] == [106]
    assert "replaces the pending off at " + _iso(t + 120) in body["message"]
    assert body["status"]["info"]["update"]["replaced"] == {"on": False, "toggleAt": t + 120}
    functions = [s for s in await cloud.statuses(device=cloud.pc_id) if s["type"] == "function"]
    assert functions[-1]["info"]["update"]["replaced"] == {"on": False, "toggleAt": t + 120}
    await cloud.advance(200)
    assert cloud.relay_on() is True  # one pending toggle: the off never happens
    relays = [s for s in await cloud.statuses(device=cloud.pc_id) if s["type"] == "relay"]
    assert [s["reason"] for s in relays] == ["reboot"]


@pytest.mark.parametrize("name", ["on_at", "off_at"])
async def test_on_at_in_milliseconds_is_refused_like_a_bad_period(cloud: Cloud, name: str) -> None:
    ms = int(cloud.w.rt.clock.now() + 60) * 1000
    r = await cloud.command({"command": {"name": name, "time": ms}})
    assert r.status_code == 400 and r.json()["responseCodes"] == [-992]
    assert (await _device_status(cloud))["info"]["toggleAt"] is None
    year = int(cloud.w.rt.clock.now()) + 365 * 86_400
    r = await cloud.command({"command": {"name": name, "time": year}})
    assert r.json()["responseCodes"] == [106 if name == "on_at" else 107]


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_switch_that_changes_nothing_logs_no_relay_status(cloud: Cloud) -> None:
    r = await cloud.command({"command": {"name": "on"}})  # on while on
    assert r.json()["responseCodes"] == [102]
    types = [(s["type"], s["reason"]) for s in await cloud.statuses(device=cloud.pc_id)]
    assert types.count(("relay", "reboot")) == 1 and ("relay", "api") not in types
    assert types[-1] == ("function", "command")
    # an off_for pending across a power cycle: the reboot turns it on, the flip changes nothing
    await cloud.command({"command": {"name": "off_for", "time": 900}})
    r = await cloud.w.client.post(
        f"/api/v1/sim/devices/{cloud.pc.id}/power-cycle", headers=cloud.w.auth()
    )
    assert r.status_code == 200, r.text
    await cloud.advance(1000)
    relays = [(s["reason"], s["info"]["on"]) for s in await cloud.statuses(device=cloud.pc_id)
              if s["type"] == "relay"]  # fmt: skip
    assert relays == [("reboot", True), ("api", False), ("reboot", True)]


@pytest.mark.embedded_only("advances the manual clock")
async def test_the_first_update_after_a_reset_covers_one_sample_period(cloud: Cloud) -> None:
    await cloud.advance(420)
    await cloud.command({"command": {"name": "reset"}})
    await cloud.advance(900)
    autos = [s for s in await cloud.statuses(device=cloud.pc_id)
             if s["type"] == "update" and s["reason"] == "auto"]  # fmt: skip
    assert [s["info"]["duration"] for s in autos] == [900]


@pytest.mark.embedded_only("advances the manual clock")
async def test_one_device_gets_its_whole_range_and_an_account_wide_overflow_is_413(
    cloud: Cloud,
) -> None:
    assert (await cloud.put({"info": {"samplePeriod": 60}})).json()["responseCodes"] == [120]
    await cloud.advance(8 * 86_400)  # 11,520 updates of one controller
    now = cloud.w.rt.clock.now()
    window = {"date[start]": _iso(now - 8 * 86_400 + 30), "date[end]": _iso(now)}
    r = await cloud.w.client.get(
        "/v1/statuses", params={"device": cloud.pc_id, **window}, headers=cloud.h()
    )
    body = r.json()
    assert r.status_code == 200 and "next" not in body
    updates = [s for s in body["statuses"] if s["type"] == "update"]
    assert len(updates) >= 8 * 1440 - 1  # every one of them (one a minute), none cut
    r = await cloud.w.client.get("/v1/statuses", params=window, headers=cloud.h())
    assert r.status_code == 413 and "device=" in r.json()["message"]
    r = await cloud.w.client.get(
        "/v1/statuses", params={**window, "limit": "5000"}, headers=cloud.h()
    )
    assert r.status_code == 200 and len(r.json()["statuses"]) == 5000 and r.json()["next"]


@pytest.mark.embedded_only("advances the manual clock")
async def test_next_links_use_the_public_base_url_and_never_carry_the_token(
    cloud: Cloud,
) -> None:
    await cloud.advance(86_400)
    r = await cloud.w.client.get(
        "/v1/statuses",
        params={"device": cloud.pc_id, "limit": "10", "access_token": cloud.token},
        headers={"Host": "evil.example"},
    )
    assert r.status_code == 200, r.text
    link = r.json()["next"]
    base = cloud.w.rt.settings.base_url
    assert link.startswith(f"{base}/v1/statuses?") and "evil" not in link
    assert cloud.token not in link and "access_token" not in link
    assert "limit=10" in link and f"device={cloud.pc_id}" in link
    rest = await cloud.w.client.get(link, headers=cloud.h())
    assert rest.status_code == 200 and len(rest.json()["statuses"]) == 10


async def test_a_huge_whole_number_is_answered_not_a_server_error(cloud: Cloud) -> None:
    body = {"command": {"name": "limit_power", "power": 1e20, "time": 3600}}
    r = await cloud.command(body)
    assert r.status_code == 200, r.text
    assert r.json()["responseCodes"] == [115]
    assert r.json()["status"]["info"]["update"]["powerLimit"]["power"] == 1e20
    r = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
    assert r.status_code == 200 and r.json()["device"]["info"]["powerLimit"]["power"] == 1e20


async def test_a_schedule_in_milliseconds_is_refused_like_on_at(cloud: Cloud) -> None:
    now = int(cloud.w.rt.clock.now())
    kept = [{"name": "off", "when": now + 60, "repeat": 0}]
    assert (await cloud.put({"schedule": kept})).json()["responseCodes"] == [117]
    for entry in (
        {"name": "on", "when": now * 1000, "repeat": 0},  # milliseconds: the year 58,000
        {"name": "limit_power", "when": now + 60, "repeat": 0, "power": 50, "time": 1e12},
    ):
        r = await cloud.put({"schedule": [entry]})
        assert r.status_code == 400 and r.json()["responseCodes"][0] < 0, r.text
    r = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
    assert r.json()["device"]["info"]["schedule"] == kept  # nothing replaced


@pytest.mark.embedded_only("advances the manual clock")
async def test_an_auto_update_after_a_status_refresh_still_covers_900_s(cloud: Cloud) -> None:
    """The document: "For the automatic update statuses, the duration will be 900 seconds";
    an API refresh covers the time since the last update, and starts the next period."""
    await cloud.advance(1200)  # one auto update at 900 s, then 300 s more
    r = await cloud.w.client.post(f"/v1/devices/{cloud.pc_id}/status", headers=cloud.h())
    assert r.json()["status"]["info"]["duration"] == 300
    refreshed = _epoch(r.json()["status"]["date"])
    await cloud.advance(2 * 900)
    updates = [
        (s["reason"], s["info"]["duration"], _epoch(s["date"]))
        for s in await cloud.statuses(device=cloud.pc_id)
        if s["type"] == "update"
    ]
    assert updates == [
        ("auto", 900, refreshed - 300),
        ("api", 300, refreshed),
        ("auto", 900, refreshed + 900),
        ("auto", 900, refreshed + 1800),
    ]


async def test_a_schedule_sent_as_a_bracket_notation_form_is_a_list(cloud: Cloud) -> None:
    """Form bodies use bracket notation, as the vendor's (qs) parser reads them:
    `schedule[0][name]=off` is the first entry of a list, not a key "0"."""
    now = int(cloud.w.rt.clock.now())
    form = {"schedule[0][name]": "off", "schedule[0][when]": str(now + 60),
            "schedule[0][repeat]": "0", "schedule[1][name]": "on",
            "schedule[1][when]": str(now + 120), "schedule[1][repeat]": "86400"}  # fmt: skip
    for prefix in ("", "info"):
        body = {(f"{prefix}[{k.replace('[', '][', 1)}" if prefix else k): v
                for k, v in form.items()}  # fmt: skip
        r = await cloud.w.client.put(f"/v1/devices/{cloud.pc_id}", data=body, headers=cloud.h())
        assert r.status_code == 200, r.text
        assert r.json()["responseCodes"] == [117, 117]
        got = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
        assert got.json()["device"]["info"]["schedule"] == [
            {"name": "off", "when": now + 60, "repeat": 0},
            {"name": "on", "when": now + 120, "repeat": 86400},
        ]


async def test_a_form_number_is_plain_ascii_digits_or_it_is_text(cloud: Cloud) -> None:
    """A form value is read as a number only when it is written as one in JSON: "nan",
    "inf", "6_00", " 600" or other scripts' digits are text, refused as "abc" is."""

    async def put(value: str) -> tuple[int, Any]:
        body = {"info[samplePeriod]": value}
        r = await cloud.w.client.put(f"/v1/devices/{cloud.pc_id}", data=body, headers=cloud.h())
        return r.status_code, r.json()

    text = await put("abc")
    assert text[0] >= 400 or text[1]["responseCodes"] != [120], text
    for value in ("nan", "inf", "-inf", "6_00", " 600", "\u0666\u0660\u0660"):
        assert await put(value) == text, value
    got = await cloud.w.client.get(f"/v1/devices/{cloud.pc_id}", headers=cloud.h())
    assert got.json()["device"]["info"]["samplePeriod"] == 900  # none of them was taken
    assert (await put("600"))[1]["responseCodes"] == [120]


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_new_sample_period_counts_from_the_last_update(cloud: Cloud) -> None:
    """samplePeriod 600 set 300 s into a period: the next auto update comes 600 s after
    the last one and covers 600 s, not the 300 s already gone plus 600."""
    boot = _epoch((await cloud.statuses(device=cloud.pc_id))[0]["date"])
    await cloud.advance(300)
    assert (await cloud.put({"info": {"samplePeriod": 600}})).json()["responseCodes"] == [120]
    await cloud.advance(1000)
    updates = [
        (s["reason"], s["info"]["duration"], _epoch(s["date"]) - boot)
        for s in await cloud.statuses(device=cloud.pc_id)
        if s["type"] == "update"
    ]
    assert updates == [("auto", 600, 600), ("auto", 600, 1200)]


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661", "9" * 5000])  # superscript 2, ...
async def test_a_limit_that_is_not_a_plain_whole_number_is_a_400(cloud: Cloud, limit: str) -> None:
    r = await cloud.w.client.get("/v1/statuses", params={"limit": limit}, headers=cloud.h())
    assert r.status_code == 400 and "limit" in r.json()["message"], r.text
