"""The tenant isolation matrix: the other account's credentials against the first account's
devices, plants, gateways, channels, statuses, tokens and commands, on every face.

Each probe is sent twice with account B's credential: at A's resource, and at one that
does not exist. The answers must be refusals and identical (status and body, the id
itself aside): nothing tells B that A's resource exists, and nothing of A's changes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from switchgear.auth import tokens
from tests.reliability.conftest import ON_EVERY_STORE, Estate
from tests.reliability.faces import PLANT

pytestmark = ON_EVERY_STORE


@dataclass(frozen=True)
class Probe:
    face: str
    name: str
    send: Callable[[Estate, str], Awaitable[httpx.Response]]  # (estate, resource id)
    mine: Callable[[Estate], str]  # account A's resource
    missing: str


def _b(e: Estate, dialect: str) -> dict[str, Any]:
    return e.section(dialect, other=True)


def native_b(e: Estate) -> dict[str, str]:
    return {"Authorization": f"Bearer {e.creds['other_account']['token']}"}


def a_device(e: Estate) -> str:
    return str(e.rt.engine.devices(1)[0].id)


def a_plug_serial(e: Estate) -> str:
    return str(e.section("smartplug")["serials"][0])


async def _native(e: Estate, method: str, path: str, body: Any = None) -> httpx.Response:
    return await e.client.request(method, path, json=body, headers=native_b(e))


def sp_b(e: Estate) -> dict[str, str]:
    return {"Authorization": f"Bearer {_b(e, 'smartplug')['access_token']}"}


def ms_b(e: Estate) -> dict[str, str]:
    s = _b(e, "multisocket")
    return {"Ocp-Apim-Subscription-Key": s["subscription_key"], "Authorization": s["id_token"]}


def pc_b(e: Estate) -> dict[str, str]:
    return {"Authorization": f"Bearer {_b(e, 'powercontroller')['token']}"}


def push3_body(target: str, **more: Any) -> dict[str, Any]:
    return {"command": "SetRelay", "target": "meter", "target_id": target,
            "params": {"relay": "Relay_1", "status": "open"}, **more}  # fmt: skip


def _id_of(token: str) -> str:
    return tokens.parse(token)[0]


PROBES: tuple[Probe, ...] = (
    # --- native -----------------------------------------------------------------------
    Probe("native", "get device", lambda e, i: _native(e, "GET", f"/api/v1/devices/{i}"),
          a_device, "999999"),
    Probe("native", "switch", lambda e, i: _native(
        e, "POST", f"/api/v1/devices/{i}/channels/0/switch", {"action": "off"}),
          a_device, "999999"),
    Probe("native", "settings", lambda e, i: _native(
        e, "PATCH", f"/api/v1/devices/{i}/settings", {"auto_off_s": 5}), a_device, "999999"),
    Probe("native", "history", lambda e, i: _native(e, "GET", f"/api/v1/devices/{i}/history"),
          a_device, "999999"),
    Probe("native", "events", lambda e, i: _native(e, "GET", f"/api/v1/events?device={i}"),
          a_device, "999999"),
    Probe("native", "power-cycle", lambda e, i: _native(
        e, "POST", f"/api/v1/sim/devices/{i}/power-cycle"), a_device, "999999"),
    Probe("native", "online", lambda e, i: _native(
        e, "POST", f"/api/v1/sim/devices/{i}/online", {"online": False}), a_device, "999999"),
    Probe("native", "load", lambda e, i: _native(
        e, "PUT", f"/api/v1/sim/devices/{i}/load", {"watts": 5}), a_device, "999999"),
    Probe("native", "command", lambda e, i: _native(e, "GET", f"/api/v1/commands/{i}"),
          lambda e: e.creds["_a_command"], uuid.uuid4().hex),
    Probe("native", "revoke token", lambda e, i: _native(e, "DELETE", f"/api/v1/tokens/{i}"),
          lambda e: _id_of(e.creds["account"]["token"]), "0123456789abcdef"),
    Probe("native", "revoke credential", lambda e, i: _native(
        e, "DELETE", f"/api/v1/credentials/{i}"),
          lambda e: str(e.section("smartplug")["client_id"]), "0123456789abcdef"),
    # --- smartplug -----------------------------------------------------------------------
    Probe("smartplug", "fetch", lambda e, i: e.client.post(
        "/provider/fetch", json={"serial_number": i}, headers=sp_b(e)), a_plug_serial, "SPG000000"),
    Probe("smartplug", "send", lambda e, i: e.client.post(
        "/provider/send", json={"serial_number": i, "command": "switch_on_off", "state": "off"},
        headers=sp_b(e)), a_plug_serial, "SPG000000"),
    Probe("smartplug", "controller", lambda e, i: e.client.get(
        f"/v1/controllers/{i}", headers=sp_b(e)), a_plug_serial, "SPG000000"),
    # --- multisocket ----------------------------------------------------------------------
    Probe("multisocket", "get plant", lambda e, i: e.client.get(
        PLANT.format(i), headers=ms_b(e)), lambda e: e.section("multisocket")["plant_id"],
          str(uuid.uuid4())),
    Probe("multisocket", "set plant", lambda e, i: e.client.post(
        PLANT.format(i), json={"status": [False]}, headers=ms_b(e)),
          lambda e: e.section("multisocket")["plant_id"], str(uuid.uuid4())),
    Probe("multisocket", "plug by id in own plant", lambda e, i: e.client.post(
        f"/multioutlet/plug/energy/addressLocation/plants/{_b(e, 'multisocket')['plant_id']}"
        f"/parameter/id/value/{i}", json={"status": [False]}, headers=ms_b(e)),
          lambda e: e.section("multisocket")["plugs"][0]["id"], "LGM-000000-1"),
    # --- powercontroller ------------------------------------------------------------------
    Probe("powercontroller", "get", lambda e, i: e.client.get(
        f"/v1/devices/{i}", headers=pc_b(e)),
          lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "configure", lambda e, i: e.client.put(
        f"/v1/devices/{i}", json={"info": {"samplePeriod": 300}}, headers=pc_b(e)),
          lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "command", lambda e, i: e.client.post(
        f"/v1/devices/{i}/command", json={"command": {"name": "off"}}, headers=pc_b(e)),
          lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "async command", lambda e, i: e.client.post(
        f"/v1/devices/{i}/command?async=true", json={"command": {"name": "off"}},
        headers=pc_b(e)), lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "status", lambda e, i: e.client.post(
        f"/v1/devices/{i}/status", headers=pc_b(e)),
          lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "statuses", lambda e, i: e.client.get(
        "/v1/statuses", params={"device": i}, headers=pc_b(e)),
          lambda e: e.section("powercontroller")["device_ids"][0], "AAAAAAAAAAA"),
    Probe("powercontroller", "revoke token", lambda e, i: e.client.delete(
        f"/v1/tokens/{i}", headers=pc_b(e)), lambda e: _jti(e.section("powercontroller")["token"]),
          "0123456789abcdef"),
    # --- push3 ------------------------------------------------------------------------------
    Probe("push3", "meter", lambda e, i: e.client.post(
        f"/sendCommand?key={_b(e, 'push3')['key']}", json=push3_body(i)),
          lambda e: e.section("push3")["meters"][0], "000000000999"),
    Probe("push3", "gateway", lambda e, i: e.client.post(
        f"/sendCommand?key={_b(e, 'push3')['key']}&gateway={i}",
        json=push3_body(_b(e, "push3")["meters"][0])),
          lambda e: e.section("push3")["gateway"], "4016FFFFFFF0"),
    Probe("push3", "channel for sending", lambda e, i: e.client.post(
        f"/sendCommand?key={_b(e, 'push3')['key']}",
        json=push3_body(_b(e, "push3")["meters"][0], response_channel_id=i)),
          lambda e: e.creds["_a_channel"], "response_" + "A" * 32),
    Probe("push3", "channel for reading", lambda e, i: e.client.get(
        f"/sub/{i}?key={_b(e, 'push3')['key']}"),
          lambda e: e.creds["_a_channel"], "response_" + "A" * 32),
    # --- meterhttp ----------------------------------------------------------------------------
    Probe("meterhttp", "meter without its PIN", lambda e, i: e.client.get(
        f"/?page=getdata&devid={i}&devpass={_b(e, 'meterhttp')['meters'][0]['devpass']}"),
          lambda e: e.section("meterhttp")["meters"][0]["devid"], "1000000000"),
)  # fmt: skip


def _jti(token: str) -> str:
    import jwt as pyjwt

    return str(pyjwt.decode(token, options={"verify_signature": False})["jti"])


def _normal(r: httpx.Response, resource: str) -> tuple[int, str]:
    return r.status_code, r.text.replace(resource, "<id>")


async def _prepare(e: Estate) -> None:
    """A's command and response channel exist before the probes."""
    h = {"Authorization": f"Bearer {e.creds['account']['token']}"}
    r = await e.client.get(f"/api/v1/devices/{a_device(e)}", headers=h)
    assert r.status_code == 200
    s = e.section("push3")
    sent = await e.client.post(f"/sendCommand?key={s['key']}", json=push3_body(s["meters"][0],
                               params={"relay": "Relay_1", "status": "close"}))  # fmt: skip
    e.creds["_a_channel"] = sent.json()["response_channel_id"]
    cmd = await e.client.post(f"/api/v1/devices/{a_device(e)}/channels/0/switch",
                              json={"action": "on"}, headers=h)  # fmt: skip
    e.creds["_a_command"] = cmd.json()["id"]
    await e.rt.advance(1)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.face}-{p.name}")
async def test_another_accounts_resource_answers_exactly_like_a_missing_one(
    estate: Estate, probe: Probe
) -> None:
    await _prepare(estate)
    before = estate.fingerprint()
    mine = probe.mine(estate)
    theirs = await probe.send(estate, mine)
    missing = await probe.send(estate, probe.missing)
    assert theirs.status_code in (400, 401, 403, 404), (theirs.status_code, theirs.text)
    assert _normal(theirs, mine) == _normal(missing, probe.missing)
    await estate.rt.advance(5)  # anything B's call might have started has run by now
    assert estate.fingerprint() == before


async def test_lists_show_none_of_the_other_accounts_things(estate: Estate) -> None:
    await _prepare(estate)
    e, c = estate, estate.client
    a_ids = {d.id for d in e.rt.engine.devices(1)}
    native = (await c.get("/api/v1/devices", headers=native_b(e))).json()
    assert not a_ids & {d["id"] for d in native}
    plugs = (await c.get("/v1/controllers", headers=sp_b(e))).json()["_embedded"]["controller"]
    assert a_plug_serial(e) not in json.dumps(plugs)
    pcs = (await c.get("/v1/devices", headers=pc_b(e))).json()["devices"]
    mine = set(e.section("powercontroller")["device_ids"])
    assert not mine & {d["device"]["id"] for d in pcs}
    statuses = (await c.get("/v1/statuses", headers=pc_b(e))).json()["statuses"]
    assert not mine & {s["device"] for s in statuses}
    for path in ("/api/v1/tokens", "/api/v1/credentials"):
        listed = (await c.get(path, headers=native_b(e))).json()
        assert e.section("smartplug")["client_id"] not in json.dumps(listed)
        assert _id_of(e.creds["account"]["token"]) not in json.dumps(listed)
    history = await c.get(f"/api/v1/devices/{a_device(e)}/history", headers=native_b(e))
    assert history.status_code == 404
