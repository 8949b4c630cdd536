"""Bulk onboarding beyond a small CSV: jobs with progress, JSON lines, real devices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchgear import onboarding
from switchgear.core.model import Device
from switchgear.importkinds import ADDRESS_REFUSED, NO_MQTT
from switchgear.links.mqttclient import MemoryBroker
from switchgear.links.netguard import NetGuard, StaticResolver
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_import import GOOD_AND_BAD
from tests.conftest import World

JSONL = {"Content-Type": "application/x-ndjson"}


async def _post(world: World, body: str, headers: dict[str, str], token: str | None = None,
                **params: Any) -> httpx.Response:  # fmt: skip
    return await world.client.post(
        "/api/v1/devices:import",
        content=body.encode(),
        headers={**headers, **world.auth(token)},
        params=params,
    )


async def _finished(world: World, location: str, token: str | None = None) -> dict[str, Any]:
    """Read the job until it is done or failed (bounded: the import runs on this loop)."""
    for _ in range(2_000):
        job = (await world.client.get(location, headers=world.auth(token))).json()
        if job["state"] in ("done", "failed"):
            return dict(job)
        await asyncio.sleep(0.005)
    raise TimeoutError(f"the import did not finish: {job}")


async def _serials(world: World, token: str | None = None) -> dict[str, dict[str, Any]]:
    r = await world.client.get("/api/v1/devices", headers=world.auth(token))
    return {d["serial"]: d for d in r.json()}


async def test_an_import_that_asks_for_a_job_answers_202_and_its_progress_reads_back(
    world: World,
) -> None:
    r = await _post(world, GOOD_AND_BAD, {"Content-Type": "text/csv", "Prefer": "respond-async"})
    assert r.status_code == 202
    assert r.headers["preference-applied"] == "respond-async"
    location = r.headers["location"]
    job = r.json()
    assert location == f"/api/v1/imports/{job['id']}"
    assert (job["state"], job["rows"], job["validated"], job["imported"]) == ("queued", 11, 0, 0)
    done = await _finished(world, location)
    assert done["state"] == "done" and done["error"] is None
    assert (done["rows"], done["validated"], done["imported"], done["unchanged"]) == (11, 11, 4, 0)
    # the same report as the same rows answered in the request
    assert [x["line"] for x in done["refused"]] == [6, 7, 8, 9, 10, 11, 12]
    assert "SPG-IMP-0001" in await _serials(world)


async def test_another_account_reads_an_import_job_as_one_that_does_not_exist(
    world: World,
) -> None:
    r = await _post(world, GOOD_AND_BAD, {"Content-Type": "text/csv", "Prefer": "respond-async"})
    location = r.headers["location"]
    await _finished(world, location)
    theirs = await world.client.get(location, headers=world.auth(world.token_b))
    nowhere = await world.client.get("/api/v1/imports/0123456789abcdef01234567",
                                     headers=world.auth(world.token_b))  # fmt: skip
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.json() == nowhere.json()
    assert theirs.headers["content-type"] == "application/problem+json"
    anonymous = await world.client.get(location)
    assert anonymous.status_code == 401


async def test_a_large_import_is_a_job_and_a_tenant_past_its_allowance_sees_it_fail(
    world: World,
) -> None:
    rows = "".join(f"SPG-BIG-{i:05d},SHPLG-1,plug {i},\n" for i in range(1_200))
    r = await _post(world, "serial,model,name,tags\n" + rows, {"Content-Type": "text/csv"},
                    world.token_b)  # fmt: skip
    assert r.status_code == 202  # more rows than an answer in the request takes
    done = await _finished(world, r.headers["location"], world.token_b)
    assert done["state"] == "failed"
    assert "1200 rows" in done["error"] and done["imported"] == 0
    assert not any(s.startswith("SPG-BIG-") for s in await _serials(world, world.token_b))


async def test_json_lines_are_checked_like_csv_rows_with_their_line_numbers(world: World) -> None:
    lines = [
        {"serial": "SPG-JL-0001", "model": "SHPLG-1", "name": "Lamp", "tags": ["hall", "lights"]},
        {"serial": "PC-JSONL0001-001", "model": "power-controller-v10", "tags": "heater;hot"},
        "not json at all",
        {"serial": "SPG-JL-0002", "model": "SHPLG-1", "colour": "red"},
        {"serial": "SPG-JL-0003", "model": "NOPE-1"},
        {"serial": "SPG-JL-0001", "model": "SHPLG-1"},
        ["a", "list"],
        {"serial": 42, "model": "SHPLG-1"},
    ]
    body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    body = body.replace("\n", "\n\n", 1)  # a blank line is skipped but counted
    r = await _post(world, body, JSONL)
    assert r.status_code == 200
    report = r.json()
    assert (report["rows"], report["imported"]) == (8, 2)
    refused = {x["line"]: x["reason"] for x in report["refused"]}
    assert sorted(refused) == [4, 5, 6, 7, 8, 9]
    assert "not a JSON object" in refused[4] and "not a JSON object" in refused[8]
    assert refused[5].startswith("colour: not a known key")
    assert "unknown model 'NOPE-1'" in refused[6]
    assert refused[7] == "serial: repeats line 1"
    assert refused[9] == "serial: must be a string"
    devices = await _serials(world)
    assert set(devices["SPG-JL-0001"]["tags"]) == {"hall", "lights"}
    assert set(devices["PC-JSONL0001-001"]["tags"]) == {"heater", "hot"}
    again = (await _post(world, body, JSONL)).json()
    assert (again["imported"], again["unchanged"]) == (0, 2)


async def test_a_json_line_nested_too_deep_is_refused_by_its_line(world: World) -> None:
    deep = "[" * 100_000 + "]" * 100_000  # 200 KB: within the body limit
    good = json.dumps({"serial": "SPG-JL-DEEP", "model": "SHPLG-1"})
    r = await _post(world, f"{deep}\n{good}\n", JSONL)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["imported"]) == (2, 1)
    assert report["refused"] == [{"line": 1, "reason": "not a JSON object (each line holds one)"}]


async def test_a_server_without_an_mqtt_link_refuses_shelly_rows_one_by_one(world: World) -> None:
    text = """serial,model,name,tags,protocol,address,pin
SPG-MIX-0001,SHPLG-1,Twin,,,,
,,Kettle,,shelly-gen1,shellyplug-AB12CD,
,,Heater,,shelly-gen2,shellyplugsg3-0011,
,,Mystery,,zigbee,x,
"""
    report = (await _post(world, text, {"Content-Type": "text/csv"})).json()
    assert (report["rows"], report["imported"]) == (4, 1)
    refused = {x["line"]: x["reason"] for x in report["refused"]}
    assert refused[3] == refused[4] == NO_MQTT
    assert "unknown protocol 'zigbee'" in refused[5]


async def test_smart_maic_rows_are_polled_meters_within_the_networks_allowed(
    world: World,
) -> None:
    poller = world.rt.poller
    poller.guard = NetGuard(world.rt.settings.meter_networks,
                            StaticResolver({"meter.lan": ["192.168.4.1"]}))  # fmt: skip
    poller.client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(503)))
    lines = [
        {"protocol": "smart-maic", "serial": "4100000001", "address": "http://meter.lan/",
         "pin": "123456", "model": "D103", "name": "Barn"},
        {"protocol": "smart-maic", "serial": "4100000002", "address": "http://127.0.0.1:8080/",
         "pin": "123456"},
        {"protocol": "smart-maic", "serial": "4100000003", "address": "http://meter.lan/"},
        {"protocol": "smart-maic", "serial": "41", "address": "http://meter.lan/", "pin": "123456"},
    ]  # fmt: skip
    report = (await _post(world, "\n".join(map(json.dumps, lines)), JSONL)).json()
    assert report["imported"] == 1
    refused = {x["line"]: x["reason"] for x in report["refused"]}
    assert "outside the networks" in refused[2]
    assert refused[3] == "pin: the meter's 6-digit PIN"
    assert refused[4] == onboarding.SERIAL_REFUSED
    barn = (await _serials(world))["4100000001"]
    assert (barn["model"], barn["name"]) == ("D103", "Barn")
    assert poller.manages(barn["id"])


@pytest.fixture
async def mqtt_rt() -> AsyncIterator[Runtime]:
    settings = Settings(database_url="memory://", speed=0,
                        secret_key="test-secret-key-of-at-least-32-bytes")  # fmt: skip
    rt = await Runtime.start(settings, mqtt=MemoryBroker().transport())
    try:
        yield rt
    finally:
        await rt.stop()


async def test_shelly_rows_are_adopted_over_the_mqtt_link(mqtt_rt: Runtime) -> None:
    rt = mqtt_rt
    account = await rt.auth.create_account("m@example.com", "M", "correct horse M")
    other = await rt.auth.create_account("o@example.com", "O", "correct horse O")
    await rt.adopt(other.id, "shelly-gen1", "shellyplug-TAKEN1", "theirs", None)
    text = "\n".join(json.dumps(x) for x in [
        {"protocol": "shelly-gen1", "address": "shellyplug-AB12CD", "name": "Kettle"},
        {"protocol": "shelly-gen2", "address": "shellyplugsg3-0011", "serial": "SG3-0011"},
        {"protocol": "shelly-gen1", "address": "shellyplug-ab12cd", "serial": "OTHER-1"},
        {"protocol": "shelly-gen1", "address": "shellyplug-TAKEN1", "serial": "MINE-1"},
        {"protocol": "shelly-gen1", "address": "bad/topic"},
        {"protocol": "shelly-gen2", "address": "shellyplugsg3-0099", "model": "SHPLG-1"},
    ])  # fmt: skip
    rows = onboarding.parse(text, "application/x-ndjson")
    report = await onboarding.run(rt, account.id, await onboarding.check(rt, account.id, rows))
    assert report.imported == 2
    refused = {r.line: r.reason for r in report.refused}
    # in the file (as the device spells it: the same id), or anyone's: one answer
    assert refused[3] == refused[4] == ADDRESS_REFUSED
    assert refused[5].startswith("address:")
    assert refused[6].startswith("model:")
    mine = {d.serial: d for d in rt.engine.devices(account.id)}
    kettle: Device = mine["shellyplug-AB12CD"]  # no serial: the MQTT id
    assert (kettle.name, kettle.simulated, kettle.attrs["protocol"]) == (
        "Kettle",
        False,
        "shelly-gen1",
    )
    assert mine["SG3-0011"].attrs["mqtt_id"] == "shellyplugsg3-0011"
    assert {"shellyplug-AB12CD", "shellyplugsg3-0011"} <= rt.mqtt.mqtt_ids() if rt.mqtt else False
    again = await onboarding.check(rt, account.id, rows)
    assert again.report.unchanged == 2 and not again.new


async def test_a_shelly_adopted_elsewhere_while_its_import_ran_is_refused_by_address(
    mqtt_rt: Runtime,
) -> None:
    """The file was checked, then another account (or worker) adopted one of its devices
    before the batch was stored: that row gets the answer it would have had at the check
    (its MQTT id is taken), not the serial's; the rest of the batch is stored."""
    rt = mqtt_rt
    account = await rt.auth.create_account("m@example.com", "M", "correct horse M")
    other = await rt.auth.create_account("o@example.com", "O", "correct horse O")
    text = "\n".join(json.dumps(x) for x in [
        {"protocol": "shelly-gen1", "address": "shellyplug-RACE01", "serial": "MINE-1"},
        {"protocol": "shelly-gen1", "address": "shellyplug-FREE01", "serial": "MINE-2"},
    ])  # fmt: skip
    plan = await onboarding.check(rt, account.id, onboarding.parse(text, "application/x-ndjson"))
    assert len(plan.new) == 2
    await rt.adopt(other.id, "shelly-gen1", "shellyplug-RACE01", "theirs", None)
    report = await onboarding.run(rt, account.id, plan)
    assert report.imported == 1
    assert [(r.line, r.reason) for r in report.refused] == [(1, ADDRESS_REFUSED)]
    assert {d.serial for d in rt.engine.devices(account.id)} == {"MINE-2"}
