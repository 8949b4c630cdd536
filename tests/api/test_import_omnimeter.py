"""An Omnimeter imported in bulk sits on a Push3 gateway, so the Push3 face reaches it."""

from __future__ import annotations

from typing import Any

from switchgear.auth.scopes import KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from tests.conftest import World

CSV = {"Content-Type": "text/csv"}
HEADER = "serial,model,name,tags\n"


async def _import(world: World, text: str, token: str | None = None) -> Any:
    r = await world.client.post(
        "/api/v1/devices:import", content=text.encode(), headers={**CSV, **world.auth(token)}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _refused(report: Any) -> dict[int, str]:
    return {x["line"]: x["reason"] for x in report["refused"]}


async def _set_relay(world: World, key: str, address: str) -> Any:
    body = {"command": "SetRelay", "target": "meter", "target_id": address,
            "params": {"relay": "Relay_1", "status": "close", "duration": 0,
                       "meter_password": "00000000"}}  # fmt: skip
    return await world.client.post(f"/sendCommand?key={key}", json=body)


async def test_an_imported_omnimeter_is_switched_through_push3(world: World) -> None:
    report = await _import(
        world,
        HEADER
        + "4016ABCDEF01,PUSH3,Barn gateway,\n"
        + "300004127,OMNIMETER-V4,Barn meter,barn\n",  # the account's only gateway
    )
    assert (report["imported"], report["refused"]) == (2, [])
    devices = {d["serial"]: d for d in (await world.client.get(
        "/api/v1/devices", headers=world.auth())).json()}  # fmt: skip
    meter = devices["000300004127"]  # stored as Push3 addresses it: 12 characters
    assert meter["tags"] == ["barn"]
    _, key = await world.rt.auth.issue(world.plug_a.account_id, KIND_PUSH3_KEY, None)
    r = await _set_relay(world, key, "300004127")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"msg_id", "response_channel_id", "response_channel_host"}
    await world.rt.advance(5)  # the gateway fetches the command and runs it on the meter
    assert world.rt.engine.shadow(meter["id"]).channels[0].on
    # importing the same rows again changes nothing
    again = await _import(
        world, HEADER + "4016ABCDEF01,PUSH3,Barn gateway,\n300004127,OMNIMETER-V4,Barn meter,barn\n"
    )
    assert (again["imported"], again["unchanged"], again["refused"]) == (0, 2, [])


async def test_a_gateway_tag_names_the_meters_gateway(world: World) -> None:
    report = await _import(
        world,
        HEADER
        + "4016ABCDEF01,PUSH3,North gateway,\n"
        + "4016ABCDEF02,PUSH3,South gateway,\n"
        + "1,OMNIMETER-V4,South meter,gateway=4016ABCDEF02;south\n"
        + "2,OMNIMETER-V4,Lost meter,south\n"
        + "3,OMNIMETER-V4,Stray meter,gateway=4016FFFFFFFF\n"
        + "4,OMNIMETER-V4,Twice,gateway=4016ABCDEF01;gateway=4016ABCDEF02\n",
    )
    assert report["imported"] == 3
    refused = _refused(report)
    assert refused == {
        5: "tags: the account has 2 PUSH3 gateways: name the meter's with the tag gateway=<serial>",
        6: "tags: gateway=4016FFFFFFFF is not a PUSH3 gateway of this account",
        7: "tags: gateway= given more than once",
    }
    south = world.rt.engine.device_by_serial(world.plug_a.account_id, "000000000001")
    assert south.attrs["gateway"] == "4016ABCDEF02" and south.tags == ("south",)
    # the south gateway's key reaches it; the north gateway's finds no such meter
    account = world.plug_a.account_id
    _, south_key = await world.rt.auth.issue(
        account, KIND_PUSH3_GATEWAY_KEY, None, attrs={"gateway": "4016ABCDEF02"}
    )
    _, north_key = await world.rt.auth.issue(
        account, KIND_PUSH3_GATEWAY_KEY, None, attrs={"gateway": "4016ABCDEF01"}
    )
    assert (await _set_relay(world, south_key, "000000000001")).status_code == 200
    north = await _set_relay(world, north_key, "000000000001")
    assert north.status_code == 404 and "unknown meter" in north.json()["error"], north.text


async def test_an_omnimeter_without_a_gateway_is_refused_by_line(world: World) -> None:
    # account b has no gateway; another account's gateway is not one it may name
    await _import(world, HEADER + "4016ABCDEF01,PUSH3,A's gateway,\n")
    report = await _import(
        world,
        HEADER + "5,OMNIMETER-V4,Orphan,\n6,OMNIMETER-V4,Borrower,gateway=4016ABCDEF01\n",
        token=world.token_b,
    )
    assert report["imported"] == 0
    assert _refused(report) == {
        2: "tags: the account has no PUSH3 gateway: name the meter's with the tag gateway=<serial>",
        3: "tags: gateway=4016ABCDEF01 is not a PUSH3 gateway of this account",
    }
