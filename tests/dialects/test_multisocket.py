"""The Legrand multisocket API as its clients call it, behind its API gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from switchgear.core.model import Device
from tests.conftest import World
from tests.deployments import on_every_deployment

world = on_every_deployment  # the fixture: each test runs embedded and scale-out

BASE = "/multioutlet/plug/energy/addressLocation/plants/{plant}/parameter/{key}/value/{value}"


@dataclass
class Plant:
    w: World
    plant_id: str
    other_plant: str
    key: str
    token: str
    key_b: str
    token_b: str
    strips: list[Device]

    def url(self, key: str, value: str, plant: str | None = None) -> str:
        return BASE.format(plant=plant or self.plant_id, key=key, value=value)

    def h(
        self, token: str | None = None, key: str | None = None, bearer: bool = False
    ) -> dict[str, str]:
        tok = token or self.token
        return {
            "Ocp-Apim-Subscription-Key": key or self.key,
            "Authorization": f"Bearer {tok}" if bearer else tok,
            "Content-Type": "application/json",
        }

    async def set(self, by: str, value: str, status: Any, **kw: Any) -> Any:
        return await self.w.client.post(
            self.url(by, value), json={"status": status}, headers=self.h(**kw)
        )

    async def get(self, by: str, value: str, **kw: Any) -> Any:
        return await self.w.client.get(self.url(by, value), headers=self.h(**kw))

    async def states(self) -> list[bool]:
        """Every socket of the plant, in id order."""
        r = await self.w.client.get(self.url("type", "outlet"), headers=self.h())
        usb = await self.w.client.get(self.url("type", "usb"), headers=self.h())
        plugs = sorted(r.json()["plugs"] + usb.json()["plugs"], key=lambda p: p["id"])
        return [p["status"][0] for p in plugs]


async def credential(w: World, kind: str, token: str) -> dict[str, Any]:
    r = await w.client.post("/api/v1/credentials", json={"kind": kind}, headers=w.auth(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def plant(world: World) -> Plant:
    rt = world.rt
    plant_id, other_plant = str(uuid.uuid4()), str(uuid.uuid4())
    a = world.plug_a.account_id
    b = world.plug_b.account_id
    strips = []
    for serial, account, pid in (
        ("LGM-P1", a, plant_id),
        ("LGM-P2", a, plant_id),
        ("LGM-Q1", b, other_plant),
    ):
        strips.append(
            await rt.add_device(
                Device(
                    0,
                    account,
                    serial,
                    "LG-MULTI-4",
                    serial,
                    rt.clock.now(),
                    attrs={"plant_id": pid},
                )
            )
        )
    key = (await credential(world, "multisocket.key", world.token_a))["subscription_key"]
    token = (await credential(world, "multisocket.id_token", world.token_a))["id_token"]
    key_b = (await credential(world, "multisocket.key", world.token_b))["subscription_key"]
    token_b = (await credential(world, "multisocket.id_token", world.token_b))["id_token"]
    await world.settle()
    return Plant(world, plant_id, other_plant, key, token, key_b, token_b, strips)


async def test_the_documents_request_and_header_forms(plant: Plant) -> None:
    # the code sample's headers and body, as printed
    r = await plant.w.client.post(
        plant.url("id", "LGM-P1-1"),
        content=b'{\n  "status": [\n    true\n  ]\n}',
        headers=plant.h(),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"plugs": [{"id": "LGM-P1-1", "name": "Outlet 1", "status": [True]}]}
    # Authorization with "Bearer " works the same
    r = await plant.get("id", "LGM-P1-1", bearer=True)
    assert r.json() == {"plugs": [{"id": "LGM-P1-1", "name": "Outlet 1", "status": [True]}]}


async def test_targeting_by_id_name_and_type_switches_exactly_the_matched(plant: Plant) -> None:
    assert (await plant.set("id", "LGM-P2-3", [True])).status_code == 200
    assert await plant.states() == [False] * 6 + [True, False]
    r = await plant.set("name", "Outlet 1", [True])  # one socket on each strip
    assert [p["id"] for p in r.json()["plugs"]] == ["LGM-P1-1", "LGM-P2-1"]
    assert await plant.states() == [True, False, False, False, True, False, True, False]
    await plant.set("type", "usb", [True])
    assert await plant.states() == [True, False, False, True, True, False, True, True]
    r = await plant.get("type", "usb")
    assert r.json() == {
        "plugs": [
            {"id": "LGM-P1-4", "name": "USB", "status": [True]},
            {"id": "LGM-P2-4", "name": "USB", "status": [True]},
        ]
    }


async def test_the_status_array_rule(plant: Plant) -> None:
    r = await plant.set("type", "outlet", [True, False, True, False, True, False])  # 6 outlets
    assert r.status_code == 200
    assert await plant.states() == [True, False, True, False, False, True, False, False]
    r = await plant.set("type", "outlet", [False])  # one element: all of them
    assert await plant.states() == [False, False, False, False, False, False, False, False]
    before = await plant.states()
    r = await plant.set("type", "outlet", [True, True])
    assert r.status_code == 400 and r.json()["statusCode"] == 400
    assert await plant.states() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing"),
        ({"status": True}, "array"),
        ({"status": ["on"]}, "array"),
        ({"status": None}, "array"),
    ],
)
async def test_bad_bodies_are_400_and_change_nothing(plant: Plant, body: Any, message: str) -> None:
    r = await plant.w.client.post(plant.url("id", "LGM-P1-1"), json=body, headers=plant.h())
    assert r.status_code == 400 and message in r.json()["message"]
    assert r.json()["statusCode"] == 400
    assert await plant.states() == [False] * 8


async def test_bad_parameters(plant: Plant) -> None:
    r = await plant.w.client.get(plant.url("colour", "red"), headers=plant.h())
    assert r.status_code == 400 and "parameterKey" in r.json()["message"]
    r = await plant.w.client.get(plant.url("id", "x", plant="not-a-uuid"), headers=plant.h())
    assert r.status_code == 400
    r = await plant.w.client.post(plant.url("id", "LGM-P1-1"), content=b"{oops", headers=plant.h())
    assert r.status_code == 400


async def test_gateway_answers_for_keys(plant: Plant) -> None:
    h = plant.h()
    del h["Ocp-Apim-Subscription-Key"]
    r = await plant.w.client.get(plant.url("id", "LGM-P1-1"), headers=h)
    assert r.status_code == 401
    assert r.json()["message"].startswith("Access denied due to missing subscription key.")
    r = await plant.get("id", "LGM-P1-1", key="sg_bogus.key")
    assert r.status_code == 401
    assert r.json()["message"].startswith("Access denied due to invalid subscription key.")


async def test_the_subscription_key_may_come_in_the_query_as_the_gateway_takes_it(
    plant: Plant,
) -> None:
    """Azure API Management takes the key as the header or as `?subscription-key=`."""
    h = plant.h()
    del h["Ocp-Apim-Subscription-Key"]
    url = plant.url("id", "LGM-P1-1") + "?subscription-key=" + plant.key
    r = await plant.w.client.post(url, json={"status": [True]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"plugs": [{"id": "LGM-P1-1", "name": "Outlet 1", "status": [True]}]}
    r = await plant.w.client.get(plant.url("id", "LGM-P1-1") + "?subscription-key=nope", headers=h)
    assert r.status_code == 401
    assert r.json()["message"].startswith("Access denied due to invalid subscription key.")
    # a sample's empty query (`...?`) and the Objective-C sample's `entities=true` change nothing
    for query in ("?", "?entities=true"):
        r = await plant.w.client.get(plant.url("id", "LGM-P1-1") + query, headers=plant.h())
        assert r.status_code == 200, (query, r.text)


@pytest.mark.embedded_only("advances the manual clock")
async def test_tokens_invalid_expired_or_without_scope(plant: Plant) -> None:
    r = await plant.get("id", "LGM-P1-1", token="not.a.jwt")
    assert r.status_code == 401 and r.json() == {
        "statusCode": 401,
        "message": "The user identified by 'authorization' does not exist.",
    }
    _, read_only = await plant.w.rt.auth.issue_jwt(
        plant.w.plug_a.account_id, "multisocket.id_token", 3600.0, ("plug.read",)
    )
    assert (await plant.get("id", "LGM-P1-1", token=read_only)).status_code == 200
    r = await plant.set("id", "LGM-P1-1", [True], token=read_only)
    assert r.status_code == 403 and "plug.write" in r.json()["message"]
    await plant.w.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 7 * 86_400}, headers=plant.w.auth()
    )
    assert (await plant.get("id", "LGM-P1-1")).status_code == 401
    _, renewed = await plant.w.rt.auth.issue_jwt(  # a fresh sign-in gives a fresh token
        plant.w.plug_a.account_id, "multisocket.id_token", 3600.0, ("plug.read",)
    )
    assert (await plant.get("id", "LGM-P1-1", token=renewed)).status_code == 200


async def test_another_accounts_plant_is_not_found_like_a_missing_one(plant: Plant) -> None:
    theirs = await plant.set("id", "LGM-Q1-1", [True])
    assert theirs.status_code == 404
    theirs = await plant.w.client.post(
        plant.url("id", "LGM-Q1-1", plant=plant.other_plant),
        json={"status": [True]},
        headers=plant.h(),
    )
    missing = await plant.w.client.post(
        plant.url("id", "LGM-Q1-1", plant=str(uuid.uuid4())),
        json={"status": [True]},
        headers=plant.h(),
    )
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    # B's own credentials switch B's plant; A's plant is not found for B
    r = await plant.w.client.get(
        plant.url("id", "LGM-P1-1"), headers=plant.h(token=plant.token_b, key=plant.key_b)
    )
    assert r.status_code == 404
    r = await plant.get("id", "NOPE-9")
    assert r.status_code == 404 and r.json()["message"] == "No Plug were found."


async def test_an_unreachable_strip_refuses_the_whole_request(plant: Plant) -> None:
    await plant.w.client.post(
        f"/api/v1/sim/devices/{plant.strips[1].id}/online",
        json={"online": False},
        headers=plant.w.auth(),
    )
    r = await plant.set("name", "Outlet 1", [True])
    assert r.status_code == 503
    assert (await plant.get("id", "LGM-P1-1")).json()["plugs"][0]["status"] == [False]


async def test_quota_counts_per_user_across_their_keys(plant: Plant) -> None:
    plant.w.rt.settings.multisocket_daily_quota = 3
    plant.w.rt.extensions.clear()
    second = (await credential(plant.w, "multisocket.key", plant.w.token_a))["subscription_key"]
    assert (await plant.get("id", "LGM-P1-1")).status_code == 200
    assert (await plant.get("id", "LGM-P1-1")).status_code == 200
    assert (await plant.get("id", "LGM-P1-1", key=second)).status_code == 200
    r = await plant.get("id", "LGM-P1-1", key=second)  # a new key is not a new quota
    assert r.status_code == 403 and r.json()["message"].startswith("Out of call volume quota.")


async def test_a_browser_preflight_is_answered_with_the_headers_the_sample_uses(
    plant: Plant,
) -> None:
    origin = {"Origin": "https://app.example.org"}
    r = await plant.w.client.options(
        plant.url("id", "LGM-P1-1"),
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,"
            "ocp-apim-subscription-key,authorization",
        },
    )
    assert r.status_code in (200, 204), r.text
    assert r.headers["access-control-allow-origin"] in ("*", origin["Origin"])
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "ocp-apim-subscription-key", "authorization"} <= allowed
    # the request itself, and a refusal, are readable by the page too
    ok = await plant.w.client.post(
        plant.url("id", "LGM-P1-1"), json={"status": [True]}, headers={**plant.h(), **origin}
    )
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "*"
    refused = await plant.w.client.get(plant.url("id", "LGM-P1-1"), headers=origin)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"


async def test_an_offline_strips_get_says_it_is_unreachable(plant: Plant) -> None:
    await plant.set("id", "LGM-P1-1", [True])
    r = await plant.w.client.post(
        f"/api/v1/sim/devices/{plant.strips[0].id}/online", json={"online": False},
        headers=plant.w.auth(),
    )  # fmt: skip
    assert r.status_code == 200
    r = await plant.get("id", "LGM-P1-1")
    assert (r.status_code, r.json()) == (503, {"statusCode": 503, "message": "Device unreachable"})
    assert (await plant.get("id", "LGM-P2-1")).status_code == 200  # its neighbour still answers


@pytest.mark.embedded_only("advances the manual clock")
async def test_quota_per_user_when_configured(plant: Plant) -> None:
    plant.w.rt.settings.multisocket_daily_quota = 3
    plant.w.rt.extensions.clear()
    for _ in range(3):
        assert (await plant.get("id", "LGM-P1-1")).status_code == 200
    r = await plant.get("id", "LGM-P1-1")
    assert r.status_code == 403
    assert r.json()["message"].startswith("Out of call volume quota. Quota will be replenished in ")
    assert r.json()["statusCode"] == 403
    other = await plant.w.client.get(
        plant.url("id", "LGM-Q1-1", plant=plant.other_plant),
        headers=plant.h(token=plant.token_b, key=plant.key_b),
    )
    assert other.status_code == 200  # another account has its own quota
    await plant.w.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": 86_400}, headers=plant.w.auth()
    )
    assert (await plant.get("id", "LGM-P1-1")).status_code == 200
