"""Roles and token children on the native API: the shared clock is the operator's."""

from __future__ import annotations

from tests.conftest import World

PROBLEM = "application/problem+json"


async def test_a_tenant_cannot_move_the_shared_clock(world: World) -> None:
    before = world.rt.clock.now()
    # the tenant's own token would expire if it could jump an hour
    r = await world.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 7200}, headers=world.auth(world.token_b)
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert world.rt.clock.now() == before
    r = await world.client.get("/api/v1/devices", headers=world.auth())
    assert r.status_code == 200  # the operator's token did not expire either
    r = await world.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 5}, headers=world.auth()
    )
    assert r.status_code == 200 and world.rt.clock.now() == before + 5


async def test_the_account_route_names_the_role(world: World) -> None:
    r = await world.client.get("/api/v1/account", headers=world.auth())
    assert r.status_code == 200
    assert r.json() == {"id": 1, "email": "a@example.com", "name": "Account A", "role": "operator"}
    r = await world.client.get("/api/v1/account", headers=world.auth(world.token_b))
    assert r.json()["role"] == "tenant"
    r = await world.client.get("/api/v1/account")
    assert r.status_code == 401


async def test_a_token_minted_with_a_token_dies_with_it(world: World) -> None:
    r = await world.client.post("/api/v1/tokens", json={}, headers=world.auth(world.token_b))
    parent = r.json()
    r = await world.client.post(
        "/api/v1/tokens",
        json={"expires_in": 10 * 365 * 86_400, "desc": "forever"},
        headers=world.auth(parent["token"]),
    )
    assert r.status_code == 201
    child = r.json()
    assert child["expires_at"] == parent["expires_at"]  # never outlives its parent
    r = await world.client.delete(
        f"/api/v1/tokens/{parent['id']}", headers=world.auth(world.token_b)
    )
    assert r.status_code == 204
    r = await world.client.get("/api/v1/devices", headers=world.auth(child["token"]))
    assert r.status_code == 401
    listed = await world.client.get("/api/v1/tokens", headers=world.auth(world.token_b))
    assert {t["id"]: t["revoked"] for t in listed.json()}[child["id"]] is True
