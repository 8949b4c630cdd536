"""The power controller API authenticates before it reads the body (seed 002): a bad token
gets the vendor's 401 whatever the body holds; only a good one gets to hear of the body."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, add

UNAUTHORIZED = {"message": "Unauthorized"}
SERIAL = "PC-AUTHFIRST-001"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _setup(w: World) -> tuple[str, str]:
    await add(w.rt, w.plug_a.account_id, SERIAL, "power-controller-v10")
    r = await w.client.post(
        "/v1/signin", json={"user": {"email": "a@example.com", "password": "correct horse A"}}
    )
    token = r.json()["token"]
    r = await w.client.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    ids = [d["device"]["id"] for d in r.json()["devices"] if d["device"]["sn"] == SERIAL]
    return token, ids[0]


BAD_BODIES: list[tuple[str, dict[str, str], bytes]] = [
    ("command", JSON, b'{"command": {"name": "on"'),  # truncated JSON
    ("command", JSON, b"[1, 2]"),  # not an object
    ("", JSON, b"\xff\xfe not json"),  # PUT /v1/devices/{id}
    ("command", FORM, b"command[name=on"),  # a malformed bracket name
]


@pytest.mark.parametrize(("suffix", "headers", "body"), BAD_BODIES)
@pytest.mark.parametrize("auth", ["wrong token", "no token", "malformed header"])
async def test_a_bad_token_is_401_whatever_the_body(
    world: World, suffix: str, headers: dict[str, str], body: bytes, auth: str
) -> None:
    _, pc_id = await _setup(world)
    extra: dict[str, str] = {
        "wrong token": {"Authorization": "Bearer not.a.token"},
        "no token": {},
        "malformed header": {"Authorization": "Basic x y"},
    }[auth]
    method = "POST" if suffix else "PUT"
    url = f"/v1/devices/{pc_id}/{suffix}" if suffix else f"/v1/devices/{pc_id}"
    r = await world.client.request(method, url, content=body, headers={**headers, **extra})
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


async def test_a_bad_token_in_a_malformed_form_is_401(world: World) -> None:
    _, pc_id = await _setup(world)
    r = await world.client.post(
        f"/v1/devices/{pc_id}/command",
        content=b"access_token=not.a.token&command[name=on",
        headers=FORM,
    )
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


async def test_a_good_token_then_hears_of_the_malformed_body(world: World) -> None:
    token, pc_id = await _setup(world)
    url = f"/v1/devices/{pc_id}/command"
    r = await world.client.post(
        url, content=b'{"command": ', headers={**JSON, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 400 and r.json() != UNAUTHORIZED
    r = await world.client.post(
        url, content=f"access_token={token}&command[name=on".encode(), headers=FORM
    )
    assert r.status_code == 400 and r.json() != UNAUTHORIZED
    body: dict[str, Any] = {"command": {"name": "off"}}
    r = await world.client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
