"""Registering devices tells nobody whose a serial is, and is rate-limited per account."""

from __future__ import annotations

from typing import Any

import httpx

from switchgear.core.model import Device
from tests.conftest import World, add

PC_MODEL = "power-controller-v10"
LAN_URL = "http://192.168.4.1/"


async def pc_token(w: World, email: str, password: str) -> str:
    r = await w.client.post("/v1/signin", json={"user": {"email": email, "password": password}})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def add_pc(w: World, token: str, sn: str, country: str = "US") -> httpx.Response:
    return await w.client.post(
        "/v1/devices", json={"sn": sn, "country": country},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


async def add_meter(w: World, token: str, **fields: Any) -> httpx.Response:
    # the meter's LAN is not there: every poll finds it unreachable, without a real request
    w.rt.poller.client = w.rt.poller.client or httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(503))
    )
    body = {"url": LAN_URL, "devid": "1728053249", "devpass": "012345", "model": "D103"}
    return await w.client.post("/api/v1/meters", json={**body, **fields}, headers=w.auth(token))


async def test_another_tenants_controller_serial_answers_like_a_malformed_one(
    world: World,
) -> None:
    w = world
    await add(w.rt, w.plug_b.account_id, "PC-BELONGSTOB1-001", PC_MODEL)
    token = await pc_token(w, "a@example.com", "correct horse A")
    taken = await add_pc(w, token, "PC-BELONGSTOB1-001")
    malformed = await add_pc(w, token, "PC-bad-serial")
    assert taken.status_code == malformed.status_code == 400
    assert taken.json() == malformed.json() == {"message": "Invalid serial number"}
    assert taken.headers.get("content-type") == malformed.headers.get("content-type")
    mine = await add_pc(w, token, "PC-FREESERIAL1-001")
    assert mine.status_code == 200, mine.text
    again = await add_pc(w, token, "PC-FREESERIAL1-001")  # the caller's own: the same answer
    assert again.status_code == 400 and again.json() == taken.json()
    owners = {d.serial: d.account_id for d in w.rt.engine.all_devices()}
    assert owners["PC-BELONGSTOB1-001"] == w.plug_b.account_id  # nothing changed hands


async def test_another_tenants_meter_devid_answers_like_a_malformed_one(world: World) -> None:
    w = world
    theirs: Device = await add(w.rt, w.plug_b.account_id, "1728053249", "D103")
    taken = await add_meter(w, w.token_a, devid=theirs.serial)
    taken_other_model = await add_meter(w, w.token_a, devid=theirs.serial, model="D101")
    malformed = await add_meter(w, w.token_a, devid="17280532")
    assert taken.status_code == taken_other_model.status_code == malformed.status_code == 400
    assert taken.json() == taken_other_model.json() == malformed.json()
    assert taken.json()["field"] == "devid"
    assert [d["serial"] for d in (await w.client.get("/api/v1/devices", headers=w.auth())).json()
            if d["family"] == "meter"] == []  # fmt: skip


async def test_registrations_are_rate_limited_per_account(world: World) -> None:
    w = world
    w.rt.settings.registrations_per_hour = 3
    token_a = await pc_token(w, "a@example.com", "correct horse A")
    token_b = await pc_token(w, "b@example.com", "correct horse B")
    # probing serials: refused attempts count as much as successful ones, on every face
    assert (await add_pc(w, token_a, "PC-PROBE000001-001")).status_code == 200
    assert (await add_pc(w, token_a, "PC-PROBE000001-001")).status_code == 400
    assert (await add_meter(w, w.token_a, devid="0000000001")).status_code == 201
    limited = await add_pc(w, token_a, "PC-PROBE000002-001")
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    limited_native = await add_meter(w, w.token_a, devid="0000000002")
    assert limited_native.status_code == 429
    assert limited_native.headers["content-type"] == "application/problem+json"
    assert (await add_pc(w, token_b, "PC-PROBE000003-001")).status_code == 200  # others unaffected
    await w.client.post("/api/v1/sim/clock/advance", json={"seconds": 3601}, headers=w.auth())
    assert (await add_pc(w, token_a, "PC-PROBE000002-001")).status_code == 200
    serials = {d.serial for d in w.rt.engine.all_devices()}
    assert "0000000002" not in serials
