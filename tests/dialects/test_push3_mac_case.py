"""Push3 gateway MACs are matched whatever their case (and with `:`/`-` separators); the
answers write them as the server holds them: twelve upper-case hex digits."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.auth.scopes import KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from switchgear.core.model import Device
from tests.conftest import World

GATEWAY = "4016A0B1C2D3"
ADDRESS = "000350000977"
SEED = {
    "command": "SetRelay",
    "target": "meter",
    "target_id": ADDRESS,
    "params": {"relay": "Relay_1", "status": "close", "duration": 1, "meter_password": "00000000"},
}


async def _device(w: World, serial: str, model: str, **attrs: str) -> Device:
    rt = w.rt
    return await rt.add_device(
        Device(0, w.plug_a.account_id, serial, model, serial, rt.clock.now(), attrs=attrs)
    )


async def _key(w: World, gateway_attr: str) -> str:
    await _device(w, GATEWAY, "PUSH3")
    await _device(w, ADDRESS, "OMNIMETER-V4", gateway=gateway_attr)
    await w.settle()
    _, key = await w.rt.auth.issue(w.plug_a.account_id, KIND_PUSH3_KEY, None)
    return key


@pytest.mark.parametrize("given", ["4016a0b1c2d3", "4016A0b1C2d3", "40:16:a0:b1:c2:d3",
                                   "40-16-A0-B1-C2-D3"])  # fmt: skip
async def test_the_gateway_narrowing_takes_either_case(world: World, given: str) -> None:
    key = await _key(world, GATEWAY)
    r = await world.client.post("/sendCommand", params={"key": key, "gateway": given}, json=SEED)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = {**SEED, "key": key, "gateway": given}
    r = await world.client.post("/sendCommand", json=body)
    assert r.status_code == 200, r.text


async def test_a_gateway_target_in_lower_case_is_that_gateway(world: World) -> None:
    key = await _key(world, GATEWAY)
    r = await world.client.post(
        f"/sendCommand?key={key}", json={**SEED, "target": "gateway", "target_id": GATEWAY.lower()}
    )
    assert r.status_code == 400 and "the gateway takes no command" in r.json()["error"]


async def test_an_unknown_gateway_is_named_in_upper_case(world: World) -> None:
    key = await _key(world, GATEWAY)
    r = await world.client.post(
        f"/sendCommand?key={key}", json={**SEED, "target": "gateway", "target_id": "4016abcdef01"}
    )
    assert (r.status_code, r.json()) == (404, {"error": "unknown gateway 4016ABCDEF01"})


async def test_a_meter_whose_gateway_was_written_in_lower_case_reaches_it(world: World) -> None:
    key = await _key(world, GATEWAY.lower())
    r = await world.client.post(f"/sendCommand?key={key}", json=SEED)
    assert r.status_code == 200, r.text
    _, gw_key = await world.rt.auth.issue(
        world.plug_a.account_id, KIND_PUSH3_GATEWAY_KEY, None, attrs={"gateway": GATEWAY}
    )
    r = await world.client.post(f"/sendCommand?key={gw_key}", json=SEED)
    assert r.status_code == 200, r.text
