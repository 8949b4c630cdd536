"""The native API as a client sees it: auth, isolation, switching, timers, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.deployments import on_every_deployment

world = on_every_deployment  # the fixture: each test runs embedded and scale-out
PROBLEM = "application/problem+json"


async def device(w: World, device_id: int, token: str | None = None) -> dict[str, Any]:
    r = await w.client.get(f"/api/v1/devices/{device_id}", headers=w.auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def history(w: World, device_id: int) -> list[dict[str, Any]]:
    r = await w.client.get(f"/api/v1/devices/{device_id}/history", headers=w.auth())
    assert r.status_code == 200, r.text
    return list(r.json()["statuses"])


async def switch(w: World, device_id: int, body: dict[str, Any], channel: int = 0) -> Any:
    return await w.client.post(
        f"/api/v1/devices/{device_id}/channels/{channel}/switch", json=body, headers=w.auth()
    )


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}]
)
async def test_every_route_needs_a_valid_token(world: World, headers: dict[str, str]) -> None:
    for method, url in [
        ("GET", "/api/v1/devices"),
        ("GET", f"/api/v1/devices/{world.plug_a.id}"),
        ("POST", f"/api/v1/devices/{world.plug_a.id}/channels/0/switch"),
        ("GET", f"/api/v1/devices/{world.plug_a.id}/history"),
        ("POST", "/api/v1/sim/clock/advance"),
    ]:
        r = await world.client.request(method, url, headers=headers, json={"action": "on"})
        assert r.status_code == 401, (method, url, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["status"] == 401


async def test_list_shows_only_the_accounts_devices(world: World) -> None:
    r = await world.client.get("/api/v1/devices", headers=world.auth())
    serials = {d["serial"] for d in r.json()}
    assert serials == {"SPG-A-1", "LGM-A-1"}
    r = await world.client.get("/api/v1/devices?family=strip", headers=world.auth())
    assert [d["serial"] for d in r.json()] == ["LGM-A-1"]
    r = await world.client.get("/api/v1/devices", headers=world.auth(world.token_b))
    assert [d["serial"] for d in r.json()] == ["SPG-B-1"]


async def test_another_accounts_device_answers_exactly_like_a_missing_one(world: World) -> None:
    missing = 999_999
    for suffix, method, body in [
        ("", "GET", None),
        ("/history", "GET", None),
        ("/channels/0/switch", "POST", {"action": "on"}),
        ("/settings", "PATCH", {"power_on": "on"}),
    ]:
        theirs = await world.client.request(
            method, f"/api/v1/devices/{world.plug_b.id}{suffix}", json=body, headers=world.auth()
        )
        absent = await world.client.request(
            method, f"/api/v1/devices/{missing}{suffix}", json=body, headers=world.auth()
        )
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json() == absent.json()
    assert (await device(world, world.plug_b.id, world.token_b))["channels"][0]["on"] is False


async def test_switch_on_is_done_durable_and_visible(world: World) -> None:
    r = await switch(world, world.plug_a.id, {"action": "on"})
    assert r.status_code == 200, r.text
    cmd = r.json()
    assert cmd["state"] == "done"
    assert (await device(world, world.plug_a.id))["channels"][0]["on"] is True
    got = await world.client.get(f"/api/v1/commands/{cmd['id']}", headers=world.auth())
    assert got.json()["state"] == "done"
    other = await world.client.get(
        f"/api/v1/commands/{cmd['id']}", headers=world.auth(world.token_b)
    )
    assert other.status_code == 404
    relay = [s for s in await history(world, world.plug_a.id) if s["kind"] == "relay"]
    assert relay[-1]["data"]["on"] is True and relay[-1]["reason"] == "api"


@pytest.mark.embedded_only("advances the manual clock")
async def test_delayed_switch_fires_after_exactly_the_delay(world: World) -> None:
    r = await switch(world, world.plug_a.id, {"action": "on", "delay": 60})
    assert r.json()["state"] == "done"
    dev = await device(world, world.plug_a.id)
    assert dev["channels"][0]["on"] is False and dev["channels"][0]["toggle_at"] is not None
    adv = await world.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 59.5}, headers=world.auth()
    )
    assert adv.status_code == 200
    assert (await device(world, world.plug_a.id))["channels"][0]["on"] is False
    await world.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 0.5}, headers=world.auth()
    )
    assert (await device(world, world.plug_a.id))["channels"][0]["on"] is True


async def test_switch_one_strip_socket_leaves_the_others(world: World) -> None:
    r = await switch(world, world.strip_a.id, {"action": "on"}, channel=2)
    assert r.status_code == 200, r.text
    states = [c["on"] for c in (await device(world, world.strip_a.id))["channels"]]
    assert states == [False, False, True, False]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "blink"},
        {"action": "on", "delay": -1},
        {"action": "on", "duration": 0},
        {"action": "on", "delay": "soon"},
        {"action": "on", "extra": 1},
        {},
    ],
)
async def test_bad_switch_input_is_a_400_problem_and_changes_nothing(
    world: World, body: dict[str, Any]
) -> None:
    before = await history(world, world.plug_a.id)
    r = await switch(world, world.plug_a.id, body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["detail"]
    assert (await device(world, world.plug_a.id))["channels"][0]["on"] is False
    assert await history(world, world.plug_a.id) == before


async def test_malformed_json_and_unknown_channel_are_400(world: World) -> None:
    r = await world.client.post(
        f"/api/v1/devices/{world.plug_a.id}/channels/0/switch",
        content=b"{not json",
        headers={**world.auth(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    r = await switch(world, world.plug_a.id, {"action": "on"}, channel=5)
    assert r.status_code == 400 and r.json().get("field") == "channel"
    assert (await device(world, world.plug_a.id))["channels"][0]["on"] is False


async def test_settings_and_power_cycle_apply_the_power_on_state(world: World) -> None:
    pid = world.plug_a.id
    r = await world.client.patch(
        f"/api/v1/devices/{pid}/settings", json={"power_on": "on"}, headers=world.auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["channels"][0]["settings"]["power_on"] == "on"
    r = await world.client.post(f"/api/v1/sim/devices/{pid}/power-cycle", headers=world.auth())
    assert r.status_code == 200
    assert r.json()["channels"][0]["on"] is True
    reboot = [s for s in await history(world, pid) if s["reason"] == "reboot"]
    assert reboot and reboot[-1]["data"]["on"] is True
    bad = await world.client.patch(
        f"/api/v1/devices/{pid}/settings", json={"power_on": "sometimes"}, headers=world.auth()
    )
    assert bad.status_code == 400


async def test_offline_device_fails_the_command_with_503_and_keeps_its_state(
    world: World,
) -> None:
    pid = world.plug_a.id
    r = await world.client.post(
        f"/api/v1/sim/devices/{pid}/online", json={"online": False}, headers=world.auth()
    )
    assert r.status_code == 200 and r.json()["online"] is False
    r = await switch(world, pid, {"action": "on"})
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    cmd = await world.client.get(f"/api/v1/commands/{r.json()['command_id']}", headers=world.auth())
    assert cmd.json()["state"] == "failed"
    await world.client.post(
        f"/api/v1/sim/devices/{pid}/online", json={"online": True}, headers=world.auth()
    )
    dev = await device(world, pid)
    assert dev["online"] is True and dev["channels"][0]["on"] is False


async def test_load_metering_and_overpower_cut_off(world: World) -> None:
    pid = world.plug_a.id
    await world.client.patch(
        f"/api/v1/devices/{pid}/settings", json={"max_power_w": 1000}, headers=world.auth()
    )
    await world.client.put(
        f"/api/v1/sim/devices/{pid}/load", json={"channel": 0, "watts": 500}, headers=world.auth()
    )
    await switch(world, pid, {"action": "on"})
    dev = await device(world, pid)
    assert dev["meters"][0]["power_w"] == pytest.approx(500, rel=0.05)
    await world.client.put(
        f"/api/v1/sim/devices/{pid}/load", json={"channel": 0, "watts": 2000}, headers=world.auth()
    )
    dev = await device(world, pid)
    assert dev["channels"][0]["on"] is False and dev["channels"][0]["overpower"] is True
    assert any(s["kind"] == "trigger" for s in await history(world, pid))


async def test_tokens_sign_in_list_and_revoke(world: World) -> None:
    r = await world.client.post(
        "/api/v1/tokens", json={"email": "a@example.com", "password": "correct horse A"}
    )
    assert r.status_code == 201, r.text
    new = r.json()
    listed = await world.client.get("/api/v1/tokens", headers=world.auth(new["token"]))
    assert new["id"] in {t["id"] for t in listed.json()}
    assert all(t["token"] is None for t in listed.json())
    r = await world.client.delete(f"/api/v1/tokens/{new['id']}", headers=world.auth())
    assert r.status_code == 204
    r = await world.client.get("/api/v1/devices", headers=world.auth(new["token"]))
    assert r.status_code == 401
    wrong = await world.client.post(
        "/api/v1/tokens", json={"email": "a@example.com", "password": "wrong"}
    )
    assert wrong.status_code == 401 and wrong.headers["content-type"] == PROBLEM
    theirs = await world.client.delete(
        f"/api/v1/tokens/{new['id']}", headers=world.auth(world.token_b)
    )
    assert theirs.status_code == 404


async def test_history_pages_with_a_cursor(world: World) -> None:
    pid = world.plug_a.id
    for action in ["on", "off"] * 5:
        await switch(world, pid, {"action": action})
    everything = await history(world, pid)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await world.client.get(
            f"/api/v1/devices/{pid}/history", params=params, headers=world.auth()
        )
        page = r.json()
        seen += [s["id"] for s in page["statuses"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [s["id"] for s in everything]
    bad = await world.client.get(
        f"/api/v1/devices/{pid}/history", params={"cursor": "garbage"}, headers=world.auth()
    )
    assert bad.status_code == 400


async def test_openapi_is_served(world: World) -> None:
    r = await world.client.get("/api/openapi.json")
    paths = r.json()["paths"]
    assert "/api/v1/devices/{device_id}/channels/{channel}/switch" in paths
    assert "/api/v1/sim/clock/advance" in paths


async def test_history_times_without_an_offset_are_utc_at_any_date(world: World) -> None:
    pid = world.plug_a.id
    await switch(world, pid, {"action": "on"})
    everything = await history(world, pid)
    for start, end in [
        ("0001-01-01T00:00:00", "9999-12-31T23:59:59"),
        ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
    ]:
        r = await world.client.get(
            f"/api/v1/devices/{pid}/history",
            params={"start": start, "end": end},
            headers=world.auth(),
        )
        assert r.status_code == 200, r.text
        assert r.json()["statuses"] == everything


async def test_text_holding_a_nul_character_is_a_400_on_every_store(world: World) -> None:
    # PostgreSQL keeps no NUL in text: it must be refused as input, never reach the store
    for url, body in [
        ("/api/v1/tokens", {"desc": "lamp\x00"}),
        ("/api/v1/credentials", {"kind": "smartplug.client", "desc": "lamp\x00"}),
        ("/api/v1/meters", {"url": "http://meter.lan/", "devid": "4100000001",
                            "devpass": "123456", "name": "barn\x00"}),
    ]:  # fmt: skip
        r = await world.client.post(url, json=body, headers=world.auth())
        assert r.status_code == 400, (url, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert [e["field"] for e in r.json()["errors"]] in (["desc"], ["name"])
    r = await world.client.get("/api/v1/tokens", headers=world.auth())
    assert r.status_code == 200 and all("\x00" not in t["desc"] for t in r.json())


@pytest.mark.parametrize("online", ["false", "off", 0, None])
async def test_online_takes_only_true_or_false(world: World, online: Any) -> None:
    r = await world.client.post(
        f"/api/v1/sim/devices/{world.plug_a.id}/online",
        json={"online": online},
        headers=world.auth(),
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert (await device(world, world.plug_a.id))["online"] is True
