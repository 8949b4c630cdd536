"""Adoption beside simulated devices that are MQTT clients themselves (`fleet=external`):
a twin's MQTT id is not a device another account may adopt and switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.links import twinwire
from tests.api.test_fleet_mqtt import database, fleet, server
from tests.api.test_mqtt_devices import require_broker, until
from tests.conftest import add

pytestmark = pytest.mark.mqtt


async def test_a_simulated_plugs_mqtt_id_cannot_be_adopted_by_another_account(
    tmp_path: Path,
) -> None:
    require_broker()
    url = database(tmp_path)
    async with server(url) as s:
        plug = await add(s.rt, s.account_id, f"SPG{tmp_path.name[-6:].upper()}X", "SHPLG-1")
        b = await s.rt.auth.create_account("b@example.com", "Account B", "correct horse B")
        _, token_b = await s.rt.auth.issue(b.id, KIND_NATIVE, 3600.0)
        async with fleet(url):
            await until(lambda: s.online(plug.id))
            r = await s.switch(plug.id, "off")
            assert r.status_code == 200, r.text
            mqtt_id = twinwire.mqtt_id(plug)  # documented: SHA-256 of model/serial
            for protocol in ("shelly-gen1", "shelly-gen2"):
                body = {"protocol": protocol, "mqtt_id": mqtt_id, "name": "not mine"}
                r = await s.client.post("/api/v1/devices", json=body, headers=s.h(token_b))
                assert r.status_code == 409, r.text
                assert r.json()["detail"] == "this device is adopted already"
            # nor in a bulk import
            csv = f"serial,model,name,tags,protocol,address\n,,,,shelly-gen1,{mqtt_id}\n"
            headers = {**s.h(token_b), "Content-Type": "text/csv"}
            r = await s.client.post("/api/v1/devices:import", content=csv, headers=headers)
            refused = r.json()["refused"]
            assert [x["reason"] for x in refused] == ["address: not an MQTT id that can be adopted"]
            mine = await s.client.get("/api/v1/devices", headers=s.h(token_b))
            assert mine.json() == []
            assert not await s.on(plug.id)
