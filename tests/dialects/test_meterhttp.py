"""The smart-MAIC meter's local API, as a third-party poller uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from switchgear.core.model import Device
from switchgear.links.memory import LinkFault
from tests.conftest import World
from tests.deployments import on_every_deployment

world = on_every_deployment  # the fixture: each test runs embedded and scale-out


@dataclass
class Meters:
    w: World
    d101: Device
    d103: Device

    async def get(self, devid: str, devpass: str, **extra: str) -> object:
        params = {"page": "getdata", "devid": devid, "devpass": devpass, **extra}
        return await self.w.client.get("/", params=params)

    async def advance(self, seconds: float) -> None:
        await self.w.client.post(
            "/api/v1/sim/clock/advance", json={"seconds": seconds}, headers=self.w.auth()
        )


@pytest.fixture
async def meters(world: World) -> Meters:
    rt = world.rt
    a = world.plug_a.account_id

    async def meter(devid: str, model: str, pin: str) -> Device:
        d = Device(0, a, devid, model, devid, rt.clock.now(), attrs={"devpass": pin})
        return await rt.add_device(d)

    d101 = await meter("1900000011", "D101", "123456")
    d103 = await meter("1728053249", "D103", "012345")
    await world.settle()
    for phase, watts, pf in ((0, 586.0, 0.94), (1, 30.0, 0.42), (2, 37.0, 0.6)):
        r = await world.client.put(
            f"/api/v1/sim/devices/{d103.id}/load",
            json={"channel": phase, "watts": watts, "power_factor": pf},
            headers=world.auth(),
        )
        assert r.status_code == 200
    return Meters(world, d101, d103)


async def test_the_documents_sample_request_returns_the_documented_structure(
    meters: Meters,
) -> None:
    r = await meters.w.client.get("/?page=getdata&devid=1728053249&devpass=012345")
    assert r.status_code == 200
    assert r.headers["server"] == "smart-MAC"
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["connection"] == "close"
    body = r.json()
    assert body["devid"] == "1728053249" and body["pout"] == "0"
    assert body["time"] == str(int(meters.w.rt.clock.now()))
    data = body["data"]
    for n in (1, 2, 3):
        for key in ("V", "A", "W", "rW", "Wh", "rWh", "PF", "Fr"):
            entry = data[f"{key}{n}"]
            assert set(entry) == {"name", "unit", "value"} and isinstance(entry["value"], str)
        assert data[f"br{n - 1}"] == {"name": "\n"}
    assert data["V1"]["name"] == "Voltage 1" and data["V1"]["unit"] == "V"
    assert data["PF2"]["value"] == "0.42"
    assert data["T"]["unit"] == "°C"
    assert list(data)[:8] == ["V1", "A1", "W1", "rW1", "Wh1", "rWh1", "PF1", "Fr1"]


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_requests_get_style_client_reads_w1(meters: Meters) -> None:
    await meters.get("1728053249", "012345", pout="1")
    await meters.advance(6)
    r = await meters.w.client.get("/?page=getdata&devid=1728053249&devpass=012345")
    data = json.loads(r.text)["data"]
    assert data["W1"]["value"] == "586"
    assert float(data["A1"]["value"]) == pytest.approx(586 / (float(data["V1"]["value"]) * 0.94),
                                                      abs=0.01)  # fmt: skip


async def test_single_phase_keys_have_no_suffix(meters: Meters) -> None:
    data = (await meters.get("1900000011", "123456")).json()["data"]
    assert {"V", "A", "W", "rW", "Wh", "rWh", "PF", "T"} <= set(data)
    assert not any(k.endswith("1") for k in data)


@pytest.mark.embedded_only("advances the manual clock")
async def test_pout_switches_the_relay_and_power_follows(meters: Meters) -> None:
    body = (await meters.get("1728053249", "012345", pout="1")).json()
    assert body["pout"] == "1" and body["data"]["W1"]["value"] == "586"
    await meters.advance(6)
    body = (await meters.get("1728053249", "012345", pout="0")).json()
    assert body["pout"] == "0" and body["data"]["W1"]["value"] == "0"


@pytest.mark.embedded_only("advances the manual clock")
async def test_energy_registers_grow_by_power_times_time(meters: Meters) -> None:
    start = (await meters.get("1728053249", "012345", pout="1")).json()["data"]
    await meters.advance(3600)
    data = (await meters.get("1728053249", "012345")).json()["data"]
    used = int(data["Wh1"]["value"]) - int(start["Wh1"]["value"])
    assert used == pytest.approx(586, abs=1)  # 586 W for an hour
    assert int(data["TWh"]["value"]) >= int(data["Wh1"]["value"])


@pytest.mark.embedded_only("advances the manual clock")
async def test_too_fast_requests_get_429_and_change_nothing(meters: Meters) -> None:
    assert (await meters.get("1728053249", "012345")).status_code == 200
    await meters.advance(5)
    r = await meters.get("1728053249", "012345", pout="1")
    assert r.status_code == 429
    await meters.advance(1)  # extended: one request per 6 s
    r = await meters.get("1728053249", "012345")
    assert r.status_code == 200 and r.json()["pout"] == "0"
    assert (await meters.get("1900000011", "123456")).status_code == 200
    await meters.advance(59)
    assert (await meters.get("1900000011", "123456")).status_code == 429  # standard: 60 s
    await meters.advance(1)
    assert (await meters.get("1900000011", "123456")).status_code == 200


@pytest.mark.embedded_only("advances the manual clock")
async def test_wrong_pin_and_unknown_devid_look_the_same_and_leak_nothing(meters: Meters) -> None:
    wrong = await meters.get("1728053249", "999999")
    unknown = await meters.get("1111111111", "012345")
    assert wrong.status_code == unknown.status_code == 403
    assert wrong.json() == unknown.json() == {"error": "access denied"}
    assert "data" not in wrong.text
    await meters.advance(6)
    assert (await meters.get("1728053249", "999999", pout="1")).status_code == 403
    await meters.advance(6)
    assert (await meters.get("1728053249", "012345")).json()["pout"] == "0"


async def test_bad_pout_and_unknown_page(meters: Meters) -> None:
    r = await meters.get("1728053249", "012345", pout="2")
    assert r.status_code == 400 and "pout" in r.json()["error"]
    r = await meters.w.client.get("/?page=settings")
    assert r.status_code == 404


@pytest.mark.embedded_only(
    "injects a fault into the in-process link, and advances the manual clock"
)
async def test_a_relay_the_meter_cannot_reach_is_503_in_the_meters_shape(meters: Meters) -> None:
    rt = meters.w.rt
    rt.link.faults[meters.d103.id] = LinkFault(lost=True)  # the relay never answers
    rt.engine.command_timeout_s = 0.05
    r = await meters.get("1728053249", "012345", pout="1")
    assert (r.status_code, r.json()) == (503, {"error": "relay unavailable"})
    assert r.headers["server"] == "smart-MAC" and r.headers["connection"] == "close"
    rt.link.faults.clear()
    await meters.advance(6)
    assert (await meters.get("1728053249", "012345")).json()["pout"] == "0"  # nothing applied


async def test_root_without_page_leads_to_the_dashboard(world: World) -> None:
    for method in ("GET", "HEAD"):
        r = await world.client.request(method, "/")
        assert (r.status_code, r.headers["location"]) == (307, "/ui/")
    page = await world.client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_the_body_is_compact_json_with_raw_utf8_like_the_meters(meters: Meters) -> None:
    r = await meters.w.client.get("/?page=getdata&devid=1728053249&devpass=012345")
    assert r.content.startswith(b'{"devid":"1728053249","time":"')
    assert b'"T":{"name":"Temperature","unit":"\xc2\xb0C","value":"' in r.content
    assert b'"V1":{"name":"Voltage 1","unit":"V","value":"' in r.content
    assert b'": ' not in r.content and b'", "' not in r.content and b"\\u00b0" not in r.content
    bad = await meters.w.client.get("/?page=getdata&devid=1728053249&devpass=012345")
    assert bad.content == b'{"error":"too many requests"}'


@pytest.mark.embedded_only("advances the manual clock")
async def test_registers_and_voltage_move_between_the_meters_samples(meters: Meters) -> None:
    """The document's two reads 60 s apart at 586 W differ by 9 Wh (33549075, 33549084)."""
    rt = meters.w.rt
    await meters.get("1728053249", "012345", pout="1")  # the relay supplies line 1
    await meters.advance(100)  # clear of the last report; the next sample is at 900 s
    first = (await meters.get("1728053249", "012345")).json()["data"]
    statuses = await rt.engine.history(meters.w.plug_a.account_id, [meters.d103.id], 0, 1e12)
    await meters.advance(60)
    second = (await meters.get("1728053249", "012345")).json()["data"]
    wh = [int(d["Wh1"]["value"]) for d in (first, second)]
    assert 9 <= wh[1] - wh[0] <= 10  # 586 W x 60 s = 9.8 Wh
    assert int(second["TWh"]["value"]) - int(first["TWh"]["value"]) in (10, 11)  # +30 W, +37 W
    assert first["V1"]["value"] != second["V1"]["value"]  # the mains wobbles as read
    after = await rt.engine.history(meters.w.plug_a.account_id, [meters.d103.id], 0, 1e12)
    assert len(after.records) == len(statuses.records)  # a read is computed, not stored


async def test_a_bad_pout_spends_no_request_of_the_meter(meters: Meters) -> None:
    r = await meters.get("1900000011", "123456", pout="on")
    assert r.status_code == 400 and r.json() == {"error": "pout must be 0 or 1"}
    r = await meters.get("1900000011", "123456")  # standard: one request a minute, still unused
    assert r.status_code == 200 and r.json()["pout"] == "0"


async def test_no_value_is_a_negative_zero(meters: Meters) -> None:
    for devid, pin in (("1900000011", "123456"), ("1728053249", "012345")):
        data = (await meters.get(devid, pin)).json()["data"]
        values = {k: v["value"] for k, v in data.items() if "value" in v}
        assert values and not [k for k, v in values.items() if v.startswith("-")], values


async def test_a_meter_off_the_network_gives_no_reading(meters: Meters) -> None:
    """Not its last reading dated now: a poller must see that the meter is gone."""
    online = f"/api/v1/sim/devices/{meters.d101.id}/online"
    r = await meters.w.client.post(online, json={"online": False}, headers=meters.w.auth())
    assert r.status_code == 200
    r = await meters.get("1900000011", "123456")
    assert (r.status_code, r.json()) == (503, {"error": "meter unavailable"})
    assert r.headers["server"] == "smart-MAC"
    r = await meters.w.client.post(online, json={"online": True}, headers=meters.w.auth())
    await meters.w.settle()
    r = await meters.get("1900000011", "123456")  # the refusal spent no request
    assert r.status_code == 200 and r.json()["devid"] == "1900000011"
