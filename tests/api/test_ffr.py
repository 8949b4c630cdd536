"""FFR aggregation as an aggregator sees it: programmes, groups, events, evidence."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device, FirmwareCommand
from switchgear.settings import Settings
from tests.conftest import World, add, world_on

PC = "power-controller-v10"
CYCLES_10 = round(10 / 60, 6)  # the ERCOT plan: 10 grid cycles at 60 Hz


async def controllers(w: World, n: int, watts: float = 4500.0) -> list[int]:
    ids = []
    for i in range(n):
        d = await add(w.rt, 1, f"PC-FFRTEST{i:04d}-001", PC)
        await load(w, d.id, {"watts": watts})
        ids.append(d.id)
    return ids


async def load(w: World, device_id: int, body: dict[str, Any]) -> None:
    r = await w.client.put(
        f"/api/v1/sim/devices/{device_id}/load", json={"channel": 0, **body}, headers=w.auth()
    )
    assert r.status_code == 200, r.text


async def advance(w: World, seconds: float) -> None:
    r = await w.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": seconds}, headers=w.auth()
    )
    assert r.status_code == 200, r.text


async def group(w: World, body: dict[str, Any], token: str | None = None) -> Any:
    return await w.client.post("/api/v1/ffr/groups", json=body, headers=w.auth(token))


async def dip(w: World, hz: float, seconds: float) -> None:
    r = await w.client.put(
        "/api/v1/sim/grid", json={"frequency_hz": hz, "duration_s": seconds}, headers=w.auth()
    )
    assert r.status_code == 200, r.text


async def only_event(w: World, group_id: int) -> dict[str, Any]:
    r = await w.client.get(f"/api/v1/ffr/events?group={group_id}", headers=w.auth())
    assert r.status_code == 200, r.text
    [summary] = r.json()
    r = await w.client.get(f"/api/v1/ffr/events/{summary['id']}", headers=w.auth())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_programmes_list_the_presets_with_their_timing(world: World) -> None:
    r = await world.client.get("/api/v1/ffr/programmes", headers=world.auth())
    assert r.status_code == 200
    by_id = {p["id"]: p for p in r.json()}
    keys = ("nominal_hz", "threshold_hz", "full_activation_s", "min_support_s")
    assert [by_id["nordic-ffr-49.5"][k] for k in keys] == [50.0, 49.5, 0.7, 5.0]
    assert by_id["nordic-ffr-49.7"]["full_activation_s"] == 1.3
    assert by_id["nordic-ffr-49.6-long"]["min_support_s"] == 30.0
    assert by_id["ercot-ffr"]["threshold_hz"] == 59.85
    assert by_id["ercot-ffr"]["full_activation_s"] == 0.25
    assert all(p["source"] for p in r.json())


async def test_enrolment_configures_what_can_serve_and_refuses_the_rest(world: World) -> None:
    w = world
    a, b = await controllers(w, 2)
    locked = await w.rt.add_device(
        Device(0, 1, "PC-LOCKED0001-001", PC, "locked", w.rt.clock.now(), tags=("locked:ffr",))
    )
    r = await group(
        w,
        {
            "name": "heaters",
            "programme": "ercot-ffr",
            "contracted_kw": 9,
            "device_ids": [a, b, locked.id, w.plug_a.id, w.plug_b.id],
        },
    )
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["devices"] == [a, b]
    assert g["available_kw"] == 9.0
    assert g["refused"] == [
        {"device_id": locked.id, "reason": "FFR settings locked by the tenant (tag locked:ffr)"},
        {"device_id": w.plug_a.id, "reason": "no FFR firmware (model SHPLG-1)"},
        {"device_id": w.plug_b.id, "reason": "device not found"},
    ]
    # the engine set each controller's FFR: 10 cycles + an instant relay fit 0.25 s, and
    # the power controller's own API shows it
    r = await w.client.post(
        "/v1/signin", json={"user": {"email": "a@example.com", "password": "correct horse A"}}
    )
    pc = {"Authorization": f"Bearer {r.json()['token']}"}
    listed = (await w.client.get("/v1/devices", headers=pc)).json()["devices"]
    [vendor_id] = [d["device"]["id"] for d in listed if d["device"]["sn"] == "PC-FFRTEST0000-001"]
    r = await w.client.get(f"/v1/devices/{vendor_id}", headers=pc)
    assert r.status_code == 200, r.text
    assert r.json()["device"]["info"]["ffr"] == {
        "enabled": True,
        "tripThreshold": 59.85,
        "returnThreshold": 59.95,
        "periods": 10,
        "delay": 0,
        "maxBackOff": 0,
    }
    r = await group(
        w, {"name": "again", "programme": "ercot-ffr", "contracted_kw": 1, "device_ids": [a]}
    )
    assert r.json()["refused"] == [{"device_id": a, "reason": f"already in FFR group {g['id']}"}]
    r = await group(
        w,
        {
            "name": "nordic",
            "programme": "nordic-ffr-49.7",
            "contracted_kw": 1,
            "device_ids": [locked.id, a],
        },
    )
    assert r.json()["refused"][0]["reason"].startswith("FFR settings locked")


async def test_a_60_hz_controller_cannot_serve_a_nordic_programme(world: World) -> None:
    [a] = await controllers(world, 1)
    r = await group(
        world, {"name": "n", "programme": "nordic-ffr-49.6", "contracted_kw": 1, "device_ids": [a]}
    )
    assert r.status_code == 422, r.text
    assert r.json()["refused"] == [
        {"device_id": a, "reason": "on a 60 Hz grid; the programme is for 50 Hz"}
    ]


async def test_a_compliant_ercot_event_with_its_evidence(world: World) -> None:
    w = world
    ids = await controllers(w, 3)
    r = await group(
        w, {"name": "fleet", "programme": "ercot-ffr", "contracted_kw": 13.5, "device_ids": ids}
    )
    gid = r.json()["id"]
    start = w.rt.clock.now()
    await dip(w, 59.8, 60)
    await advance(w, 900)
    ev = await only_event(w, gid)
    assert ev["compliant"] is True, ev["reasons"]
    assert ev["reasons"] == []
    assert (ev["group_id"], ev["programme"]) == (gid, "ercot-ffr")
    assert (ev["contracted_kw"], ev["delivered_kw"]) == (13.5, 13.5)
    assert ev["activation_s"] == CYCLES_10
    assert ev["frequency_min_hz"] == 59.8
    assert [
        (d["device_id"], d["response_s"], d["shed_kw"], d["support_s"], d["compliant"])
        for d in ev["devices"]
    ] == [(i, CYCLES_10, 4.5, round(60 - 10 / 60, 6), True) for i in ids]
    r = await w.client.get(f"/api/v1/ffr/events/{ev['id']}/evidence.csv", headers=w.auth())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 9101  # 100 ms from 10 s before to 15 min after
    at = {
        round(i * 0.1 - 10, 1): (float(x["frequency_hz"]), float(x["active_power_kw"]))
        for i, x in enumerate(rows)
    }
    assert at[-10.0] == (60.0, 13.5)
    assert at[0.0] == (59.8, 13.5)
    assert at[0.1] == (59.8, 13.5)
    assert at[0.2] == (59.8, 0.0)  # every relay open after 10 cycles (0.167 s)
    assert at[59.9] == (59.8, 0.0)
    assert at[60.0] == (60.0, 13.5)  # back to nominal: every heater back on at once
    assert rows[0]["time"].endswith("Z")
    assert abs(start - 10 - _epoch(rows[0]["time"])) < 0.001


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_each_kind_of_failure_is_reported_with_its_figures(world: World) -> None:
    w = world
    good, slow, satisfied, user = await controllers(w, 4)
    await load(
        w, satisfied, {"model": {"type": "thermostat", "rated_watts": 4500, "temperature_c": 60.0}}
    )
    r = await group(
        w,
        {
            "name": "fleet",
            "programme": "ercot-ffr",
            "contracted_kw": 18,
            "device_ids": [good, slow, satisfied, user],
        },
    )
    gid = r.json()["id"]
    assert r.json()["available_kw"] == 13.5  # the satisfied heater has nothing to shed
    # the tenant sets 30 grid cycles on one controller (as its vendor's app would)
    await w.rt.engine.command(1, slow, FirmwareCommand("pc.config", {"ffr": {"periods": 30}}))
    await dip(w, 59.8, 60)
    await advance(w, 2)
    r = await w.client.post(
        f"/api/v1/devices/{user}/channels/0/switch", headers=w.auth(), json={"action": "on"}
    )  # the household wants hot water now
    assert r.status_code == 200, r.text
    await advance(w, 898)
    ev = await only_event(w, gid)
    assert ev["compliant"] is False
    devices = {d["device_id"]: d for d in ev["devices"]}
    assert (devices[good]["response_s"], devices[good]["compliant"]) == (CYCLES_10, True)
    assert devices[slow]["response_s"] == 0.5
    assert devices[slow]["compliant"] is False
    assert (devices[satisfied]["shed_kw"], devices[satisfied]["compliant"]) == (0.0, False)
    assert devices[user]["support_s"] == round(2 - 10 / 60, 6)
    assert ev["delivered_kw"] == 9.0  # the good one and the one cut short, on time
    assert ev["reasons"] == [
        f"device {slow} late: responded in 0.500 s, full activation is 0.25 s",
        f"device {user} support cut short: held 1.833 s, 59.833 s required",
        f"under-delivery: 9 kW delivered of 18 kW contracted (shed nothing: devices {satisfied})",
    ]


async def test_capacity_forecast_follows_history_hour_by_hour(world: World) -> None:
    w = world
    _, w.token_a = await w.rt.auth.issue(1, KIND_NATIVE, 86_400.0)  # outlives the hours below
    heater, satisfied = await controllers(w, 2)
    await load(
        w, satisfied, {"model": {"type": "thermostat", "rated_watts": 4500, "temperature_c": 60.0}}
    )
    r = await group(
        w,
        {
            "name": "g",
            "programme": "ercot-ffr",
            "contracted_kw": 4,
            "device_ids": [heater, satisfied],
        },
    )
    gid = r.json()["id"]
    now = w.rt.clock.now()
    await advance(w, 3600 - now % 3600 + 3600)  # a whole hour, an hour on
    await advance(w, 2 * 3600)
    await load(w, heater, {"watts": 1000})
    r = await w.client.get(f"/api/v1/ffr/groups/{gid}", headers=w.auth())
    assert r.status_code == 200
    g = r.json()
    assert g["available_kw"] == 1.0
    rows = g["forecast"]
    assert len(rows) == 24
    # rows start now (a whole hour): the two hours before it repeat tomorrow at 22, 23
    assert [x["available_kw"] for x in rows[22:]] == [4.5, 4.5]  # as history says
    assert {x["available_kw"] for x in rows[:20]} == {1.0}  # no history: the power now
    assert rows[0]["hour"].endswith(":00:00.000Z")


async def test_another_accounts_group_and_event_are_missing(world: World) -> None:
    w = world
    ids = await controllers(w, 1)
    gid = (
        await group(
            w, {"name": "g", "programme": "ercot-ffr", "contracted_kw": 4.5, "device_ids": ids}
        )
    ).json()["id"]
    await dip(w, 59.5, 10)
    await advance(w, 901)
    eid = (await only_event(w, gid))["id"]
    for url, missing in [
        (f"/api/v1/ffr/groups/{gid}", "/api/v1/ffr/groups/999"),
        (f"/api/v1/ffr/events/{eid}", "/api/v1/ffr/events/999"),
        (f"/api/v1/ffr/events/{eid}/evidence.csv", "/api/v1/ffr/events/999/evidence.csv"),
        (f"/api/v1/ffr/events?group={gid}", "/api/v1/ffr/events?group=999"),
    ]:
        theirs = await w.client.get(url, headers=w.auth(w.token_b))
        none = await w.client.get(missing, headers=w.auth(w.token_b))
        assert theirs.status_code == none.status_code == 404
        assert theirs.json() == none.json()
    r = await w.client.get("/api/v1/ffr/events", headers=w.auth(w.token_b))
    assert r.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "programme": "no-such", "contracted_kw": 1, "device_ids": []},
        {"name": "x", "programme": "ercot-ffr", "contracted_kw": 1},
        {"name": "x", "programme": "ercot-ffr", "contracted_kw": 0, "device_ids": []},
        {
            "name": "x",
            "programme": {"nominal_hz": 60, "threshold_hz": 61},
            "contracted_kw": 1,
            "device_ids": [],
        },
    ],
)
async def test_bad_group_requests_are_problems(world: World, body: dict[str, Any]) -> None:
    r = await group(world, body)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_custom_programme_with_an_unknown_field_is_refused(world: World) -> None:
    w = world
    ids = await controllers(w, 1)
    mine = {"nominal_hz": 60, "threshold_hz": 59.8, "full_activation_s": 0.5, "min_support_s": 5}
    body = {"name": "g", "contracted_kw": 4, "device_ids": ids}
    # a misspelt optional field would otherwise be dropped for its default (15 min logging)
    r = await group(w, {**body, "programme": {**mine, "log_after": 60}})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "log_after" in r.json()["detail"] and r.json()["field"] == "programme"
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert r.json() == []
    # a preset as GET /ffr/programmes shows it, altered, is a custom programme
    [ercot] = [p for p in (await w.client.get("/api/v1/ffr/programmes", headers=w.auth())).json()
               if p["id"] == "ercot-ffr"]  # fmt: skip
    r = await group(w, {**body, "programme": {**ercot, "log_after_s": 60}})
    assert r.status_code == 201, r.text
    assert (r.json()["programme"]["id"], r.json()["programme"]["log_after_s"]) == ("custom", 60)


@pytest.mark.parametrize("value", [5, 0.5, True, None, ["held"], {"rule": "held"}, "", "h" * 201])
async def test_a_custom_programme_return_rule_that_is_not_a_short_text_is_refused(
    world: World, value: Any
) -> None:
    w = world
    ids = await controllers(w, 1)
    mine = {"nominal_hz": 60, "threshold_hz": 59.8, "full_activation_s": 0.5, "min_support_s": 5}
    body = {"name": "g", "contracted_kw": 4, "device_ids": ids}
    r = await group(w, {**body, "programme": {**mine, "return_rule": value}})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["field"] == "return_rule"
    assert problem["detail"] == "programme.return_rule must be a text of 1 to 200 characters"
    assert (await w.client.get("/api/v1/ffr/groups", headers=w.auth())).json() == []
    r = await group(w, {**body, "programme": {**mine, "return_rule": "held " * 40}})
    assert r.status_code == 201, r.text
    assert r.json()["programme"]["return_rule"] == "held " * 40  # kept whole


@pytest.mark.parametrize(
    ("field", "value"),
    [("device_ids", [True]), ("device_ids", ["1"]), ("device_ids", [1.0]), ("contracted_kw", "5")],
)
async def test_group_fields_of_the_wrong_type_are_400_and_enrol_nothing(
    world: World, field: str, value: Any
) -> None:
    w = world
    [pc] = await controllers(w, 1)
    assert pc == 4  # device 1 is the account's plug: `true` or "1" must not name it
    body = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 5, "device_ids": [pc]}
    r = await group(w, {**body, field: value})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"].startswith(field)
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert r.json() == []


async def test_prequalification_fields_of_the_wrong_type_are_400(world: World) -> None:
    w = world
    ids = await controllers(w, 1)
    gid = (await group(w, {"name": "g", "programme": "ercot-ffr", "contracted_kw": 4,
                           "device_ids": ids})).json()["id"]  # fmt: skip
    for body in [{"hold_s": True}, {"frequency_hz": "59.7"}]:
        r = await w.client.post(
            f"/api/v1/ffr/groups/{gid}/prequalification", json=body, headers=w.auth()
        )
        assert r.status_code == 400, r.text
    r = await w.client.get(f"/api/v1/ffr/events?group={gid}", headers=w.auth())
    assert r.json() == []


@pytest.mark.parametrize(
    ("selects", "says"),
    [
        ({"tag": "nothing-has-this"}, "no device of the account has the tag 'nothing-has-this'"),
        ({"tag": "theirs"}, "no device of the account has the tag 'theirs'"),  # b's tag only
        ({"device_ids": []}, "device_ids is empty"),
    ],
)
async def test_a_group_of_no_device_is_refused_and_not_created(
    world: World, selects: dict[str, Any], says: str
) -> None:
    w = world
    await controllers(w, 1)  # the account has a controller, just not one that is named
    await w.rt.add_device(
        Device(0, 2, "PC-THEIRS0001-001", PC, "theirs", w.rt.clock.now(), tags=("theirs",))
    )
    r = await group(w, {"name": "g", "programme": "ercot-ffr", "contracted_kw": 1, **selects})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["field"] == next(iter(selects))
    assert problem["detail"].startswith("no device matched: ") and says in problem["detail"]
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert r.status_code == 200 and r.json() == []
    spec = (await w.client.get("/api/openapi.json")).json()
    assert "422" in spec["paths"]["/api/v1/ffr/groups"]["post"]["responses"]


async def test_a_group_whose_every_device_is_refused_is_422_and_not_created(
    world: World,
) -> None:
    w = world
    theirs = await add(w.rt, 2, "PC-THEIRS0002-001", PC)  # another account's
    await w.rt.add_device(
        Device(0, 1, "PC-TAGGED0001-001", PC, "locked", w.rt.clock.now(), tags=("locked:ffr",))
    )
    body = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 1}
    r = await group(w, {**body, "device_ids": [w.plug_a.id, theirs.id]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["field"] == "device_ids"
    assert problem["refused"] == [
        {"device_id": w.plug_a.id, "reason": "no FFR firmware (model SHPLG-1)"},
        {"device_id": theirs.id, "reason": "device not found"},
    ]
    assert problem["detail"].startswith("no device enrolled: ")
    assert "no FFR firmware (model SHPLG-1)" in problem["detail"]
    r = await group(w, {**body, "tag": "locked:ffr"})  # by tag: the tag is the field
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "tag" and "locked" in r.json()["refused"][0]["reason"]
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert r.status_code == 200 and r.json() == []
    # nothing was taken either: the first group made afterwards is group 1
    [a] = await controllers(w, 1)
    r = await group(w, {**body, "device_ids": [a, w.plug_a.id]})  # some refused: still 201
    assert r.status_code == 201, r.text
    assert r.json()["id"] == 1 and r.json()["devices"] == [a]
    assert r.json()["refused"] == [
        {"device_id": w.plug_a.id, "reason": "no FFR firmware (model SHPLG-1)"}
    ]


async def test_prequalification_steps_the_simulated_grid_and_reports(world: World) -> None:
    w = world
    ids = await controllers(w, 2)
    gid = (await group(w, {"name": "g", "programme": "ercot-ffr", "contracted_kw": 9,
                           "device_ids": ids})).json()["id"]  # fmt: skip
    r = await w.client.post(f"/api/v1/ffr/groups/{gid}/prequalification", headers=w.auth())
    assert r.status_code == 202, r.text
    test = r.json()
    assert test["frequency_hz"] == 59.75
    again = await w.client.post(f"/api/v1/ffr/groups/{gid}/prequalification", headers=w.auth())
    assert again.status_code == 409
    await advance(w, 900)
    ev = await only_event(w, gid)
    assert ev["id"] == test["event_id"]
    assert (ev["compliant"], ev["delivered_kw"], ev["frequency_min_hz"]) == (True, 9.0, 59.75)
    assert [d["support_s"] for d in ev["devices"]] == [round(30 - 10 / 60, 6)] * 2
    r = await w.client.post(f"/api/v1/ffr/groups/{gid}/prequalification", headers=w.auth(w.token_b))
    assert r.status_code == 404


@pytest.fixture(params=["memory", "sqlite"])
async def stored_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """The world on the memory store, whose claims answer at once, and on SQLite, whose
    claims await the database (as PostgreSQL's do): requests interleave differently."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'ffr.db'}"
    settings = Settings(
        database_url=url, speed=0, secret_key="test-secret-key-of-at-least-32-bytes"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), world_on(app) as w:
        yield w


async def test_groups_requested_at_once_get_an_id_each(stored_world: World) -> None:
    w = stored_world
    a, b = await controllers(w, 2)
    body = {"programme": "ercot-ffr", "contracted_kw": 1}
    rs = await asyncio.gather(
        group(w, {**body, "name": "first", "device_ids": [a]}),
        group(w, {**body, "name": "second", "device_ids": [b]}),
    )
    assert [r.status_code for r in rs] == [201, 201], [r.text for r in rs]
    assert sorted(r.json()["id"] for r in rs) == [1, 2]
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert sorted((g["name"], g["devices"]) for g in r.json()) == [
        ("first", [a]),
        ("second", [b]),
    ]


async def test_a_controller_requested_by_two_groups_at_once_joins_one(
    stored_world: World,
) -> None:
    w = stored_world
    a, b, c = await controllers(w, 3)
    body = {"programme": "ercot-ffr", "contracted_kw": 1}
    rs = await asyncio.gather(
        group(w, {**body, "name": "first", "device_ids": [a, b]}),
        group(w, {**body, "name": "second", "device_ids": [a, c]}),
    )
    assert [r.status_code for r in rs] == [201, 201], [r.text for r in rs]
    made = [r.json() for r in rs]
    [won] = [g for g in made if a in g["devices"]]  # one of them has it, the other refused it
    [lost] = [g for g in made if g is not won]
    assert lost["refused"] == [{"device_id": a, "reason": f"already in FFR group {won['id']}"}]
    r = await w.client.get("/api/v1/ffr/groups", headers=w.auth())
    assert sorted(d for g in r.json() for d in g["devices"]) == [a, b, c]
    # it leaves the one group it is in, and may then join another
    r = await w.client.delete(f"/api/v1/ffr/groups/{won['id']}/devices/{a}", headers=w.auth())
    assert r.status_code == 200 and r.json()["restored"] is True, r.text
    r = await group(w, {**body, "name": "third", "device_ids": [a]})
    assert r.status_code == 201 and r.json()["devices"] == [a], r.text
