"""Adoption on a server without an MQTT link: a 409 that says why, and nothing stored."""

from __future__ import annotations

from tests.conftest import World


async def test_adopting_without_an_mqtt_link_is_409_saying_why(world: World) -> None:
    body = {"protocol": "shelly-gen1", "mqtt_id": "shellyplug-A1B2C3", "name": "kettle"}
    before = (await world.client.get("/api/v1/devices", headers=world.auth())).json()
    r = await world.client.post("/api/v1/devices", json=body, headers=world.auth())
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "no MQTT link" in r.json()["detail"] and "--link mqtt://" in r.json()["detail"]
    after = (await world.client.get("/api/v1/devices", headers=world.auth())).json()
    assert after == before
