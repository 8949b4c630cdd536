"""The smart-MAIC meter's devid index and the power controller's id index follow a device
stored again with changed attributes at once (`Engine.update_device`, the one path that
changes a stored device: neither the native API nor the CLI changes a PIN or a serial)."""

from __future__ import annotations

import dataclasses

import httpx

from switchgear.core.model import Device
from switchgear.dialects.powercontroller.ids import device_id
from tests.conftest import World, add

DEVID, PIN = "1728053299", "012345"


async def _meter(w: World) -> Device:
    rt = w.rt
    d = await rt.add_device(
        Device(0, w.plug_a.account_id, DEVID, "D101", "m", rt.clock.now(), attrs={"devpass": PIN})
    )
    await w.settle()
    return d


async def _get(w: World, devid: str, devpass: str) -> httpx.Response:
    params = {"page": "getdata", "devid": devid, "devpass": devpass}
    r = await w.client.get("/", params=params)
    await w.rt.advance(60)  # the meter's request slot is free again for the next read
    return r


async def test_a_changed_pin_is_the_only_pin_at_once(world: World) -> None:
    meter = await _meter(world)
    assert (await _get(world, DEVID, PIN)).status_code == 200
    await world.rt.engine.update_device(
        dataclasses.replace(meter, attrs={**meter.attrs, "devpass": "654321"})
    )
    assert (await _get(world, DEVID, PIN)).status_code == 403
    assert (await _get(world, DEVID, "654321")).status_code == 200


async def test_a_changed_devid_leaves_the_old_one_unknown(world: World) -> None:
    meter = await _meter(world)
    assert (await _get(world, DEVID, PIN)).status_code == 200
    await world.rt.engine.update_device(dataclasses.replace(meter, serial="1728053300"))
    old = await _get(world, DEVID, PIN)
    assert (old.status_code, old.json()) == (403, {"error": "access denied"})
    assert (await _get(world, "1728053300", PIN)).status_code == 200


async def test_a_meter_without_a_pin_answers_no_one(world: World) -> None:
    meter = await _meter(world)
    await world.rt.engine.update_device(dataclasses.replace(meter, attrs={}))
    assert (await _get(world, DEVID, PIN)).status_code == 403


async def _pc_token(w: World) -> dict[str, str]:
    r = await w.client.post(
        "/v1/signin", json={"user": {"email": "a@example.com", "password": "correct horse A"}}
    )
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_a_power_controller_stored_again_answers_at_its_new_id_only(world: World) -> None:
    pc = await add(world.rt, world.plug_a.account_id, "PC-IDXAAAA01-001", "power-controller-v10")
    h = await _pc_token(world)
    old_id = device_id(pc)
    assert (await world.client.get(f"/v1/devices/{old_id}", headers=h)).status_code == 200
    moved = dataclasses.replace(pc, serial="PC-IDXAAAA01-002")
    await world.rt.engine.update_device(moved)
    gone = await world.client.get(f"/v1/devices/{old_id}", headers=h)
    never = await world.client.get("/v1/devices/AAAAAAAAAAA", headers=h)
    assert gone.status_code == 404 and gone.json() == never.json()
    r = await world.client.get(f"/v1/devices/{device_id(moved)}", headers=h)
    assert r.status_code == 200 and r.json()["device"]["sn"] == "PC-IDXAAAA01-002"


async def test_a_power_controller_s_changed_country_shows_at_once(world: World) -> None:
    pc = await add(world.rt, world.plug_a.account_id, "PC-IDXAAAA01-003", "power-controller-v10")
    h = await _pc_token(world)
    assert (await world.client.get(f"/v1/devices/{device_id(pc)}", headers=h)).status_code == 200
    await world.rt.engine.update_device(dataclasses.replace(pc, attrs={"country": "CA"}))
    r = await world.client.get(f"/v1/devices/{device_id(pc)}", headers=h)
    assert r.status_code == 200 and r.json()["device"]["country"] == "CA"
