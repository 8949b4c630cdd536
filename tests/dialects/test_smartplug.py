"""The smart-plug provider API as a client written for the vendor uses it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from switchgear.auth import tokens
from tests.conftest import World
from tests.deployments import on_every_deployment

world = on_every_deployment  # the fixture: each test runs embedded and scale-out

PROBLEM = "application/problem+json"

# The seed document's request bodies, as printed (typographic quotes, // comments).
SEED_FETCH = """{
"serial_number" : "{Smart Plug Serial Number}"
}"""
SEED_SENDS = [
    """{
"serial_number": “{Smart Plug Serial Number}”,
"command" : "switch_on_off",
"state" : "on" //receives values “on”/“off”
}""",
    """{
"serial_number": “{Smart Plug Serial Number}”,
"command" : "default_switch",
"state" : "last" // Default power-on state ("off", "on", "last")
}""",
    """{
"serial_number": “{Smart Plug Serial Number}”,
"command" : "max_power_turn_off",
"max_power" : 3000 // overpower threshold in Watts
}""",
    """{
"serial_number": “{Smart Plug Serial Number}”,
"command" : "auto_switch",// Automatic flip back timer, seconds.
"state" : "on", // Will engage after turning the plug ON or OFF
"timeout": 5 // Seconds, 0 = OFF
}""",
]


def as_written(doc: str, serial: str) -> bytes:
    """The document's body with comments removed and quotes straightened."""
    text = re.sub(r"//[^\n]*", "", doc).replace("“", '"').replace("”", '"')
    return text.replace("{Smart Plug Serial Number}", serial).encode()


@dataclass
class Plug:
    w: World
    token: str
    refresh: str
    client_id: str
    client_secret: str

    def h(self, token: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token or self.token}",
            "Content-Type": "application/json",
        }

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.w.client.post(path, content=content, headers=self.h(token))

    async def send(self, **body: Any) -> Any:
        return await self.post("/provider/send", {"serial_number": "SPG-A-1", **body})

    async def fetch(self, serial: str = "SPG-A-1") -> Any:
        return await self.post("/provider/fetch", {"serial_number": serial})

    async def advance(self, seconds: float) -> None:
        r = await self.w.client.post(
            "/api/v1/sim/clock/advance", json={"seconds": seconds}, headers=self.w.auth()
        )
        assert r.status_code == 200

    async def relay(self) -> bool:
        r = await self.w.client.get("/v1/controllers/SPG-A-1", headers=self.h())
        return bool(r.json()["controller"]["relay_state"])


async def login(w: World, client_id: str, secret: str, email: str, password: str) -> Any:
    body = {
        "client_id": client_id,
        "client_secret": secret,
        "username": email,
        "password": password,
    }
    return await w.client.post("/v1/auth/login", json=body)


@pytest.fixture
async def plug(world: World) -> Plug:
    r = await world.client.post(
        "/api/v1/credentials", json={"kind": "smartplug.client"}, headers=world.auth()
    )
    assert r.status_code == 201, r.text
    client = r.json()
    r = await login(world, client["client_id"], client["client_secret"], "a@example.com",
                    "correct horse A")  # fmt: skip
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    assert auth["expires_in"] == 86400 and auth["token_type"] == "Bearer" and auth["scope"] is None
    return Plug(world, auth["access_token"], auth["refresh_token"], client["client_id"],
                client["client_secret"])  # fmt: skip


async def test_the_documents_requests_get_the_documented_shapes(plug: Plug) -> None:
    for path in ("/provider/fetch", "/v1/provider/fetch"):
        r = await plug.post(path, as_written(SEED_FETCH, "SPG-A-1"))
        assert r.status_code == 200, r.text
        assert r.json() == {
            "provider": {"online": True, "power": [0]},
            "_links": {"self": {"href": "/v1/provider/fetch"}},
        }
    for doc in SEED_SENDS:
        for path in ("/provider/send", "/v1/provider/send"):
            r = await plug.post(path, as_written(doc, "SPG-A-1"))
            assert r.status_code == 200, (doc, r.text)
            assert r.json() == {
                "provider": {"isok": True, "id": plug.w.plug_a.id, "type": "relay",
                             "code": "SHPLG-1"},
                "_links": {"self": {"href": "/v1/provider/send"}},
            }  # fmt: skip
    assert await plug.relay() is True


async def test_fetch_reports_power_per_channel(plug: Plug) -> None:
    await plug.w.client.put(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/load", json={"watts": 60}, headers=plug.w.auth()
    )
    await plug.send(command="switch_on_off", state="on")
    assert (await plug.fetch()).json()["provider"]["power"] == [60]


@pytest.mark.embedded_only("advances the manual clock")
@pytest.mark.parametrize(("state", "first", "then"), [("on", "on", False), ("off", "off", True)])
async def test_auto_switch_flips_back_after_the_timeout(
    plug: Plug, state: str, first: str, then: bool
) -> None:
    assert (await plug.send(command="auto_switch", state=state, timeout=5)).status_code == 200
    await plug.send(command="switch_on_off", state=first)
    await plug.advance(4.999)
    assert await plug.relay() is (not then)
    await plug.advance(0.001)
    assert await plug.relay() is then
    await plug.send(command="auto_switch", state=state, timeout=0)  # 0 disables it
    await plug.send(command="switch_on_off", state=first)
    await plug.advance(60)
    assert await plug.relay() is (not then)


@pytest.mark.embedded_only("advances the manual clock")
@pytest.mark.parametrize("state", ["on", "off"])
async def test_auto_switch_timeout_0_cancels_the_flip_already_armed(plug: Plug, state: str) -> None:
    await plug.send(command="switch_on_off", state="off" if state == "on" else "on")
    assert (await plug.send(command="auto_switch", state=state, timeout=30)).status_code == 200
    await plug.send(command="switch_on_off", state=state)  # arms the flip back in 30 s
    await plug.advance(10)
    assert (await plug.send(command="auto_switch", state=state, timeout=0)).status_code == 200
    await plug.advance(3600)
    assert await plug.relay() is (state == "on")  # stayed where it was switched


@pytest.mark.embedded_only("advances the manual clock")
async def test_an_offline_plug_reports_no_power_an_hour_later(plug: Plug) -> None:
    await plug.w.client.put(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/load", json={"channel": 0, "watts": 120},
        headers=plug.w.auth(),
    )  # fmt: skip
    await plug.send(command="switch_on_off", state="on")
    assert (await plug.fetch()).json()["provider"] == {"online": True, "power": [120]}
    await plug.w.client.post(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/online", json={"online": False},
        headers=plug.w.auth(),
    )  # fmt: skip
    await plug.advance(3600)
    assert (await plug.fetch()).json()["provider"] == {"online": False, "power": []}


@pytest.mark.parametrize(
    ("default", "before", "after"),
    [("off", "on", False), ("on", "off", True), ("last", "on", True), ("last", "off", False)],
)
async def test_default_switch_is_the_state_after_a_power_cycle(
    plug: Plug, default: str, before: str, after: bool
) -> None:
    await plug.send(command="default_switch", state=default)
    await plug.send(command="switch_on_off", state=before)
    r = await plug.w.client.post(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/power-cycle", headers=plug.w.auth()
    )
    assert r.status_code == 200
    assert await plug.relay() is after


async def test_max_power_turn_off_trips_and_fetch_shows_no_power(plug: Plug) -> None:
    await plug.send(command="max_power_turn_off", max_power=1000)
    await plug.w.client.put(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/load", json={"watts": 800}, headers=plug.w.auth()
    )
    await plug.send(command="switch_on_off", state="on")
    assert (await plug.fetch()).json()["provider"]["power"] == [800]
    await plug.w.client.put(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/load", json={"watts": 1500}, headers=plug.w.auth()
    )
    assert (await plug.fetch()).json()["provider"]["power"] == [0]
    assert await plug.relay() is False


@pytest.mark.embedded_only("advances the manual clock")
async def test_tokens_expire_and_renew_gives_a_working_one(plug: Plug) -> None:
    await plug.advance(86_400)
    r = await plug.fetch()
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    body = {"client_id": plug.client_id, "client_secret": plug.client_secret,
            "refresh_token": plug.refresh}  # fmt: skip
    r = await plug.w.client.post("/v1/auth/renew", json=body)
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    assert "refresh_token" not in auth and auth["expires_in"] == 86400
    assert (
        await plug.fetch()
        if False
        else await plug.post("/provider/fetch", {"serial_number": "SPG-A-1"}, auth["access_token"])
    ).status_code == 200
    bad = await plug.w.client.post("/v1/auth/renew", json={**body, "refresh_token": "nope"})
    assert bad.status_code == 400 and bad.json()["auth"]["error"] == "invalid_grant"


async def test_login_as_clients_send_it(world: World) -> None:
    ok = await login(world, "mclimate", "mclimate_core", "a@example.com", "correct horse A")
    assert ok.status_code == 200  # the public client of the vendor's app
    form = await world.client.post("/v1/auth/login", data={
        "client_id": "mclimate", "client_secret": "mclimate_core",
        "username": "a@example.com", "password": "correct horse A"})  # fmt: skip
    assert form.status_code == 200 and form.json()["auth"]["access_token"]
    bad = await login(world, "mclimate", "mclimate_core", "a@example.com", "wrong")
    assert bad.status_code == 400
    assert bad.json() == {
        "auth": {"error": "invalid_grant",
                 "error_description": "Invalid username and password combination"},
        "_links": {"self": {"href": "/v1/auth/login"}},
    }  # fmt: skip
    client = await login(world, "someone", "guess", "a@example.com", "correct horse A")
    assert client.status_code == 401 and client.json()["auth"]["error"] == "invalid_client"
    token = ok.json()["auth"]["access_token"]
    native = await world.client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert native.status_code == 401  # a smart-plug token is not a native token


async def test_client_credentials_in_http_basic_log_in_and_renew(plug: Plug) -> None:
    """OAuth 2 client libraries send the client as HTTP Basic (RFC 6749 section 2.3.1)."""
    user = {"grant_type": "password", "username": "a@example.com", "password": "correct horse A"}
    basic = (plug.client_id, plug.client_secret)
    r = await plug.w.client.post("/v1/auth/login", data=user, auth=basic)
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    r = await plug.post("/provider/fetch", {"serial_number": "SPG-A-1"}, auth["access_token"])
    assert r.status_code == 200
    renew = {"grant_type": "refresh_token", "refresh_token": auth["refresh_token"]}
    r = await plug.w.client.post("/v1/auth/renew", data=renew, auth=basic)
    assert r.status_code == 200, r.text
    r = await plug.w.client.post("/v1/auth/login", data=user, auth=("mclimate", "mclimate_core"))
    assert r.status_code == 200, r.text
    r = await plug.w.client.post("/v1/auth/login", data=user, auth=(plug.client_id, "wrong"))
    assert r.status_code == 401 and r.json()["auth"]["error"] == "invalid_client"


async def test_another_account_sees_its_plugs_as_missing(plug: Plug) -> None:
    r = await login(plug.w, "mclimate", "mclimate_core", "b@example.com", "correct horse B")
    b_token = r.json()["auth"]["access_token"]
    send = {"serial_number": "SPG-A-1", "command": "switch_on_off", "state": "on"}
    for path, body in [("/provider/fetch", {"serial_number": "SPG-A-1"}), ("/provider/send", send)]:
        theirs = await plug.post(path, body, b_token)
        missing = await plug.post(path, {**body, "serial_number": "NOPE-1"}, b_token)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
    r = await plug.w.client.get("/v1/controllers/SPG-A-1", headers=plug.h(b_token))
    assert r.status_code == 404
    assert await plug.relay() is False
    listing = await plug.w.client.get("/v1/controllers", headers=plug.h(b_token))
    assert [c["serial_number"] for c in listing.json()["_embedded"]["controller"]] == ["SPG-B-1"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": "explode"}, "command"),
        ({"command": "switch_on_off", "state": "maybe"}, "state"),
        ({"command": "default_switch", "state": "sometimes"}, "state"),
        ({"command": "max_power_turn_off", "max_power": -5}, "max_power"),
        ({"command": "max_power_turn_off", "max_power": "lots"}, "max_power"),
        ({"command": "auto_switch", "state": "on", "timeout": "soon"}, "timeout"),
        ({"command": "auto_switch", "state": "on", "timeout": -1}, "timeout"),
        ({"command": "auto_switch", "state": "on", "timeout": True}, "timeout"),
    ],
)
async def test_bad_commands_are_400_naming_the_field(
    plug: Plug, body: dict[str, Any], field: str
) -> None:
    r = await plug.send(**body)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert field in problem["detail"]
    assert problem["type"] == "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
    assert await plug.relay() is False


async def test_malformed_requests_are_400(plug: Plug) -> None:
    r = await plug.post("/provider/send", b'{"serial_number": ')
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = await plug.post("/provider/fetch", {"serial": "SPG-A-1"})
    assert r.status_code == 400 and "serial_number" in r.json()["detail"]
    r = await plug.post("/provider/fetch", [1, 2])
    assert r.status_code == 400
    r = await plug.w.client.post("/provider/fetch", json={"serial_number": "SPG-A-1"})
    assert r.status_code == 401  # no token


async def test_an_offline_plug_fails_the_send_and_records_it_failed(plug: Plug) -> None:
    await plug.w.client.post(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/online", json={"online": False},
        headers=plug.w.auth(),
    )  # fmt: skip
    assert (await plug.fetch()).json()["provider"] == {"online": False, "power": []}
    r = await plug.send(command="switch_on_off", state="on")
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    assert "offline" in r.json()["detail"]
    await plug.w.client.post(
        f"/api/v1/sim/devices/{plug.w.plug_a.id}/online", json={"online": True},
        headers=plug.w.auth(),
    )  # fmt: skip
    assert await plug.relay() is False


async def test_client_credentials_are_listed_without_secrets_and_revocable(plug: Plug) -> None:
    listed = await plug.w.client.get("/api/v1/credentials", headers=plug.w.auth())
    entry = next(c for c in listed.json() if c["id"] == plug.client_id)
    assert entry["kind"] == "smartplug.client" and plug.client_secret not in listed.text
    r = await plug.w.client.delete(f"/api/v1/credentials/{plug.client_id}", headers=plug.w.auth())
    assert r.status_code == 204
    again = await login(plug.w, plug.client_id, plug.client_secret, "a@example.com",
                        "correct horse A")  # fmt: skip
    assert again.status_code == 401
    bad = await plug.w.client.post(
        "/api/v1/credentials", json={"kind": "nonsense"}, headers=plug.w.auth()
    )
    assert bad.status_code == 400


async def test_revoking_the_client_ends_the_tokens_it_was_given(plug: Plug) -> None:
    assert (await plug.fetch()).status_code == 200
    r = await plug.w.client.delete(f"/api/v1/credentials/{plug.client_id}", headers=plug.w.auth())
    assert r.status_code == 204
    r = await plug.fetch()  # the access token the client got at login
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.json()["title"] == "Unauthorized"
    r = await plug.send(command="switch_on_off", state="on")
    assert r.status_code == 401
    assert plug.w.rt.engine.shadow(plug.w.plug_a.id).channels[0].on is False
    body = {"client_id": plug.client_id, "client_secret": plug.client_secret,
            "refresh_token": plug.refresh}  # fmt: skip
    assert (await plug.w.client.post("/v1/auth/renew", json=body)).status_code == 401


async def test_revoking_a_refresh_token_ends_the_access_tokens_renewed_from_it(plug: Plug) -> None:
    body = {"client_id": plug.client_id, "client_secret": plug.client_secret,
            "refresh_token": plug.refresh}  # fmt: skip
    r = await plug.w.client.post("/v1/auth/renew", json=body)
    renewed = r.json()["auth"]["access_token"]
    assert (
        await plug.post("/provider/fetch", {"serial_number": "SPG-A-1"}, renewed)
    ).status_code == 200
    refresh_id, _ = tokens.parse(plug.refresh)
    r = await plug.w.client.delete(f"/api/v1/credentials/{refresh_id}", headers=plug.w.auth())
    assert r.status_code == 204
    r = await plug.post("/provider/fetch", {"serial_number": "SPG-A-1"}, renewed)
    assert r.status_code == 401


@pytest.mark.parametrize("page", ["\u00b2", "\u0661", "9" * 5000, "0"])  # superscript 2, ...
async def test_a_page_that_is_not_a_plain_whole_number_is_a_400_problem(
    plug: Plug, page: str
) -> None:
    r = await plug.w.client.get("/v1/controllers", params={"page": page}, headers=plug.h())
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
