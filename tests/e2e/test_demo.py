"""The real `switchgear demo` process, driven over HTTP on a manual clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proc import Demo, running_demo, start_demo

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path) as d:
        yield d


def test_smartplug_section_works_for_both_accounts(demo: Demo) -> None:
    c = demo.credentials
    for section, other in ((c["smartplug"], c["other_account"]["smartplug"]),
                           (c["other_account"]["smartplug"], c["smartplug"])):  # fmt: skip
        assert {"client_id", "client_secret", "access_token", "refresh_token"} <= set(section)
        h = {"Authorization": f"Bearer {section['access_token']}"}
        with httpx.Client(base_url=c["base_url"], headers=h) as client:
            mine = client.post("/provider/fetch", json={"serial_number": section["serials"][0]})
            assert mine.status_code == 200 and mine.json()["provider"]["online"] is True
            theirs = client.post("/provider/fetch", json={"serial_number": other["serials"][0]})
            assert theirs.status_code == 404
            renew = client.post("/v1/auth/renew", json={
                "client_id": section["client_id"], "client_secret": section["client_secret"],
                "refresh_token": section["refresh_token"]})  # fmt: skip
            assert renew.status_code == 200


def test_multisocket_section_switches_its_plant_and_not_the_others(demo: Demo) -> None:
    c = demo.credentials
    mine, theirs = c["multisocket"], c["other_account"]["multisocket"]
    assert {"subscription_key", "id_token", "plant_id", "plugs"} <= set(mine)
    assert {p["type"] for p in mine["plugs"]} == {"outlet", "usb"}
    base = "/multioutlet/plug/energy/addressLocation/plants/{}/parameter/id/value/{}"
    h = {"Ocp-Apim-Subscription-Key": mine["subscription_key"], "Authorization": mine["id_token"]}
    with httpx.Client(base_url=c["base_url"], headers=h) as client:
        plug = mine["plugs"][2]
        r = client.post(base.format(mine["plant_id"], plug["id"]), json={"status": [True]})
        assert r.status_code == 200 and r.json()["plugs"][0]["status"] == [True]
        other = client.get(base.format(theirs["plant_id"], theirs["plugs"][0]["id"]))
        assert other.status_code == 404


def test_powercontroller_section_works_for_both_accounts(demo: Demo) -> None:
    c = demo.credentials
    mine, theirs_section = c["powercontroller"], c["other_account"]["powercontroller"]
    for section, other in ((mine, theirs_section), (theirs_section, mine)):
        assert len(section["device_ids"]) == len(section["serials"]) == 2
        h = {"Authorization": f"Bearer {section['token']}"}
        with httpx.Client(base_url=c["base_url"], headers=h) as client:
            flows = []
            for device_id in section["device_ids"]:
                r = client.get(f"/v1/devices/{device_id}")
                assert r.status_code == 200 and r.json()["device"]["status"]["state"] == "Active"
                flows.append(r.json()["device"]["info"]["flowmeter"]["type"])
            assert sorted(flows) == ["none", "tuf2000m"]
            r = client.post(f"/v1/devices/{section['device_ids'][0]}/command",
                            json={"command": {"name": "off_for", "time": 900}})  # fmt: skip
            assert r.status_code == 200 and r.json()["responseCodes"] == [105]
            theirs = client.get(f"/v1/devices/{other['device_ids'][0]}")
            assert theirs.status_code == 404


def test_push3_section_commands_a_meter_and_reads_the_answer(demo: Demo) -> None:
    c = demo.credentials
    mine, theirs = c["push3"], c["other_account"]["push3"]
    assert {"key", "gateway", "meters", "meter_password"} <= set(mine)
    body = {"command": "SetRelay", "target": "meter", "target_id": mine["meters"][0],
            "params": {"relay": "Relay_2", "status": "open",
                       "meter_password": mine["meter_password"]}}  # fmt: skip
    with httpx.Client(base_url=c["base_url"], timeout=10) as client:
        r = client.post(f"/sendCommand?key={mine['key']}", json=body)
        assert r.status_code == 200, r.text
        sent = r.json()
        native = {"Authorization": f"Bearer {c['account']['token']}"}
        client.post("/api/v1/sim/clock/advance", json={"seconds": 2}, headers=native)
        with client.stream("GET", f"/sub/{sent['response_channel_id']}.b1") as stream:
            line = next(line for line in stream.iter_lines() if line.strip())
        assert json.loads(line)["msg_id"] == sent["msg_id"]
        assert json.loads(line)["success"] is True
        r = client.post(f"/sendCommand?key={theirs['key']}", json=body)
        assert r.status_code == 404  # another account's meter: as one that does not exist


def test_a_plain_http_get_client_reads_a_meter(demo: Demo) -> None:
    m = next(m for m in demo.credentials["meterhttp"]["meters"] if m["phases"] == 3)
    url = f"{demo.base_url}/?page=getdata&devid={m['devid']}&devpass={m['devpass']}"
    r = httpx.get(url)
    data = r.json()["data"]  # what a requests.get(url).json() client does
    assert float(data["W1"]["value"]) > 0  # the demo switched the meter's load on
    assert r.headers.get_list("server") == ["smart-MAC"]  # the meter's own, no server's name
    assert httpx.get(url).status_code == 429  # extended: one request per 6 s


def test_credentials_file_follows_the_contract(demo: Demo) -> None:
    c = demo.credentials
    assert c["base_url"].startswith("http://127.0.0.1:") and c["speed"] == 0
    for key in ("account", "other_account"):
        assert {"email", "password", "token"} <= set(c[key])
    for dialect in ("smartplug", "multisocket", "powercontroller", "push3", "meterhttp"):
        assert dialect in c and dialect in c["other_account"]
    assert len(c["meterhttp"]["meters"]) == 2
    assert {m["phases"] for m in c["meterhttp"]["meters"]} == {1, 3}
    with httpx.Client(base_url=c["base_url"]) as client:
        for key in ("account", "other_account"):
            r = client.get(
                "/api/v1/devices", headers={"Authorization": f"Bearer {c[key]['token']}"}
            )
            assert r.status_code == 200
            families = {d["family"] for d in r.json()}
            assert families == {"plug", "strip", "load_controller", "meter", "gateway"}
            models = {d["model"] for d in r.json()}
            assert {"SHPLG-1", "D101", "D103", "OMNIMETER-V4", "PUSH3"} <= models


async def _collect_events(
    base_url: str, token: str, device_id: int, out: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream("GET", f"/api/v1/events?device={device_id}", headers=headers) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if out[-1]["kind"] == "relay" and out[-1]["reason"] == "timer":
                    return


async def test_delayed_switch_on_the_manual_clock_end_to_end(demo: Demo) -> None:
    c = demo.credentials
    token = c["account"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=c["base_url"], headers=headers, timeout=30) as client:
        plugs = (await client.get("/api/v1/devices", params={"family": "plug"})).json()
        pid = plugs[0]["id"]
        before = plugs[0]["channels"][0]["on"]
        events: list[dict[str, Any]] = []
        ready = asyncio.Event()
        listener = asyncio.create_task(_collect_events(c["base_url"], token, pid, events, ready))
        await asyncio.wait_for(ready.wait(), 10)
        target = "off" if before else "on"
        r = await client.post(
            f"/api/v1/devices/{pid}/channels/0/switch", json={"action": target, "delay": 60}
        )
        assert r.status_code == 200 and r.json()["state"] == "done"
        clock0 = (await client.get("/api/v1/sim/clock")).json()["epoch"]
        r = await client.post("/api/v1/sim/clock/advance", json={"seconds": 59})
        assert (await client.get(f"/api/v1/devices/{pid}")).json()["channels"][0]["on"] is before
        r = await client.post("/api/v1/sim/clock/advance", json={"seconds": 1})
        dev = (await client.get(f"/api/v1/devices/{pid}")).json()
        assert dev["channels"][0]["on"] is (not before)
        hist = (await client.get(f"/api/v1/devices/{pid}/history")).json()["statuses"]
        fired = [s for s in hist if s["kind"] == "relay" and s["reason"] == "timer"]
        assert fired and fired[-1]["data"]["on"] is (not before)
        await asyncio.wait_for(listener, 10)
        timer_events = [e for e in events if e["kind"] == "relay" and e["reason"] == "timer"]
        fired_at = datetime.fromisoformat(timer_events[0]["ts"]).timestamp()
        assert fired_at == pytest.approx(clock0 + 60, abs=2e-3)  # ISO, to the millisecond


def test_restart_resumes_the_same_accounts_devices_and_credentials(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first = start_demo(tmp_path, db)
    try:
        c1 = first.credentials
        with httpx.Client(base_url=c1["base_url"]) as client:
            h = {"Authorization": f"Bearer {c1['account']['token']}"}
            devices1 = client.get("/api/v1/devices", headers=h).json()
    finally:
        first.stop()
    second = start_demo(tmp_path, db)
    try:
        c2 = second.credentials
        for key in ("account", "other_account"):
            assert c2[key] == c1[key]
        with httpx.Client(base_url=c2["base_url"]) as client:
            h = {"Authorization": f"Bearer {c2['account']['token']}"}
            devices2 = client.get("/api/v1/devices", headers=h).json()
        assert [(d["id"], d["serial"]) for d in devices2] == [
            (d["id"], d["serial"]) for d in devices1
        ]
    finally:
        second.stop()


def test_the_banner_prints_each_curl_example_verbatim(demo: Demo) -> None:
    log = demo.log_once("\nmeterhttp\n  curl ")  # the last example
    assert "--data-ascii '{\"status\": [true]}'" in log  # not eaten as Rich markup
    for name in ("native", "smartplug", "multisocket", "powercontroller", "push3", "meterhttp"):
        assert f"\n{name}\n  curl " in log
