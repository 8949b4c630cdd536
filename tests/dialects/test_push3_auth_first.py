"""The Push3 API checks the key before it says anything about the request (seed 003): a
request without a good key gets the answer a keyless or wrong-keyed one gets, whatever its
body or channel id holds; only a good key gets to hear what is wrong with them."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.auth.scopes import KIND_NATIVE
from tests.conftest import World
from tests.dialects.push3kit import gateway_and_meter

ADDRESS = "000350000955"
SEED = {
    "command": "SetRelay",
    "target": "meter",
    "target_id": ADDRESS,
    "params": {"relay": "Relay_1", "status": "close", "duration": 1, "meter_password": "00000000"},
}
JSON = {"Content-Type": "application/json"}

BAD_BODIES = [
    b'{"command": "SetRelay", "target": "meter"',  # truncated JSON
    b"[1, 2]",  # JSON, not an object
    b"\xff\xfe not json",
    b'{"command": NaN}',
    b"",
]


async def _key(w: World) -> str:
    return await gateway_and_meter(w, ADDRESS)


async def _unauthenticated(w: World, auth: str, key: str) -> tuple[str, dict[str, str]]:
    """The URL and headers of a request carrying no good key in the query or a header."""
    _, native = await w.rt.auth.issue(w.plug_a.account_id, KIND_NATIVE, 60)
    return {
        "no key": ("/sendCommand", {}),
        "wrong key": (f"/sendCommand?key={key}x", {}),
        "empty key": ("/sendCommand?key=", {}),
        "another API's credential": (f"/sendCommand?key={native}", {}),
        "wrong bearer": ("/sendCommand", {"Authorization": "Bearer nonsense"}),
        "not a bearer": ("/sendCommand", {"Authorization": f"Basic {key}"}),
    }[auth]


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize(
    "auth",
    ["no key", "wrong key", "empty key", "another API's credential", "wrong bearer",
     "not a bearer"],
)  # fmt: skip
async def test_a_bad_key_gets_the_same_401_whatever_the_body(
    world: World, body: bytes, auth: str
) -> None:
    key = await _key(world)
    url, headers = await _unauthenticated(world, auth, key)
    well_formed = await world.client.post(url, json=SEED, headers=headers)
    assert well_formed.status_code == 401 and set(well_formed.json()) == {"error"}
    r = await world.client.post(url, content=body, headers={**JSON, **headers})
    assert (r.status_code, r.json()) == (401, well_formed.json()), r.text


async def test_a_wrong_key_in_the_body_is_401_before_the_rest_is_judged(world: World) -> None:
    key = await _key(world)
    body: dict[str, Any] = {**SEED, "key": key + "x", "command": "Explode", "params": [1]}
    r = await world.client.post("/sendCommand", json=body)
    assert r.status_code == 401 and set(r.json()) == {"error"}


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_good_key_then_hears_of_the_malformed_body(world: World, body: bytes) -> None:
    key = await _key(world)
    for url, headers in ((f"/sendCommand?key={key}", JSON),
                         ("/sendCommand", {**JSON, "Authorization": f"Bearer {key}"})):  # fmt: skip
        r = await world.client.post(url, content=body, headers=headers)
        assert r.status_code == 400 and "JSON" in r.json()["error"], r.text
    r = await world.client.post("/sendCommand", json={**SEED, "key": key})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("channel", ["bad!id", "response_x.b99999", "a" * 129])
async def test_a_wrong_stream_key_gets_the_404_whatever_the_channel_id(
    world: World, channel: str
) -> None:
    key = await _key(world)
    missing = await world.client.get(f"/sub/response_doesnotexist?key={key}x")
    assert (missing.status_code, missing.json()) == (404, {"error": "channel not found"})
    r = await world.client.get(f"/sub/{channel}?key={key}x")
    assert (r.status_code, r.json()) == (404, {"error": "channel not found"}), r.text
    # read without a key (as the document does) or with a good one, the id's form is judged
    for suffix in ("", f"?key={key}"):
        r = await world.client.get(f"/sub/{channel}{suffix}")
        assert (r.status_code, r.json()) == (400, {"error": "malformed channel id"}), r.text
