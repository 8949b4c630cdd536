"""Bulk onboarding through `POST /api/v1/devices:import`, as a client sends a CSV."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import World

CSV = {"Content-Type": "text/csv"}

GOOD_AND_BAD = """serial,model,name,tags
SPG-IMP-0001,SHPLG-1,Hall lamp,hall;lights
LGM-IMP-0001,LG-MULTI-4,Desk strip,
PC-IMPORT01-001,power-controller-v10,Boiler,water-heater
1234567890,D103,Barn meter,meters;barn
SPG-IMP-0002,NOPE-9,Mystery,
SPG-B-1,SHPLG-1,Someone else's,
x,SHPLG-1,Too short,
SPG-IMP-0001,SHPLG-1,Hall lamp again,
PC-bad,power-controller-v10,Boiler 2,
SPG-IMP-0003,SNPL-00112EU,Real plug,
SPG-IMP-0004,SHPLG-1
"""


async def _import(world: World, text: str, token: str | None = None, **params: Any) -> Any:
    return await world.client.post(
        "/api/v1/devices:import",
        content=text.encode(),
        headers={**CSV, **world.auth(token)},
        params=params,
    )


async def _serials(world: World, token: str | None = None) -> dict[str, dict[str, Any]]:
    r = await world.client.get("/api/v1/devices", headers=world.auth(token))
    return {d["serial"]: d for d in r.json()}


async def test_good_rows_become_devices_and_bad_rows_are_reported_by_line(world: World) -> None:
    r = await _import(world, GOOD_AND_BAD)
    assert r.status_code == 200
    report = r.json()
    assert (report["rows"], report["imported"], report["unchanged"]) == (11, 4, 0)
    refused = {x["line"]: x["reason"] for x in report["refused"]}
    assert sorted(refused) == [6, 7, 8, 9, 10, 11, 12]
    assert "unknown model 'NOPE-9'" in refused[6]
    # another account's serial is answered exactly like a malformed one
    assert refused[7] == refused[8] == refused[10]
    assert "B" not in refused[7] and "exists" not in refused[7]
    assert refused[9] == "serial: repeats line 2"
    assert "real device" in refused[11]
    assert "4 fields" in refused[12]
    devices = await _serials(world)
    lamp = devices["SPG-IMP-0001"]
    assert (lamp["name"], lamp["model"]) == ("Hall lamp", "SHPLG-1")
    assert set(lamp["tags"]) == {"hall", "lights"}
    assert devices["1234567890"]["model"] == "D103"
    # an imported device is a live twin: it switches
    on = await world.client.post(
        f"/api/v1/devices/{lamp['id']}/channels/0/switch",
        json={"action": "on"},
        headers=world.auth(),
    )
    assert on.json()["state"] == "done"
    # the other account's device is untouched and still its own
    assert "SPG-B-1" in await _serials(world, world.token_b)
    assert "SPG-B-1" not in devices


async def test_importing_the_same_rows_again_changes_nothing(world: World) -> None:
    first = (await _import(world, GOOD_AND_BAD)).json()
    before = await _serials(world)
    again = (await _import(world, GOOD_AND_BAD)).json()
    assert (again["imported"], again["unchanged"]) == (0, first["imported"])
    assert again["refused"] == first["refused"]
    assert await _serials(world) == before


async def test_line_numbers_follow_the_offset_of_a_file_sent_in_parts(world: World) -> None:
    r = await _import(world, "serial,model,name,tags\nbad,NOPE,x,\n", line_offset=5000)
    assert r.json()["refused"] == [{"line": 5002, "reason": "model: unknown model 'NOPE'"}]


async def test_a_quoted_field_over_several_lines_keeps_later_line_numbers_right(
    world: World,
) -> None:
    text = (
        "serial,model,name,tags\n"  # 1
        'SPG-IMP-ML1,SHPLG-1,"Hall\nlamp",hall\n'  # 2-3
        "SPG-IMP-ML2,NOPE-9,Mystery,\n"  # 4
        "\n"  # 5
        'SPG-IMP-ML3,SHPLG-1,"Barn\r\n\r\nlight",\n'  # 6-8
        "SPG-IMP-ML4,SHPLG-1\n"  # 9
        f"SPG-IMP-ML5,SHPLG-1,{'x' * 200_000},\n"  # 10
        "SPG-IMP-ML6,NOPE-9,Mystery,\n"  # 11
    )
    report = (await _import(world, text, line_offset=100)).json()
    assert (report["rows"], report["imported"]) == (6, 2)
    refused = {x["line"] - 100: x["reason"] for x in report["refused"]}
    assert sorted(refused) == [4, 9, 10, 11]
    assert refused[4] == refused[11] == "model: unknown model 'NOPE-9'"
    assert "4 fields" in refused[9] and "field" in refused[10]


async def test_a_line_break_inside_a_quoted_name_is_kept(world: World) -> None:
    text = (
        "serial,model,name,tags\n"
        'SPG-IMP-NL1,SHPLG-1,"Hall\nlamp",hall\n'
        'SPG-IMP-NL2,SHPLG-1,"Barn\r\n\r\nlight",\n'
    )
    assert (await _import(world, text)).json()["imported"] == 2
    stored = await _serials(world)
    assert stored["SPG-IMP-NL1"]["name"] == "Hall\nlamp"
    assert stored["SPG-IMP-NL2"]["name"] == "Barn\n\nlight"  # (line ends read as \n)


async def test_a_file_without_the_header_is_refused_whole(world: World) -> None:
    r = await _import(world, "SPG-IMP-0001,SHPLG-1,Hall lamp,\n")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "serial,model,name,tags" in r.json()["detail"]
    assert "SPG-IMP-0001" not in await _serials(world)


async def test_a_tenant_import_past_its_hourly_allowance_adds_nothing(world: World) -> None:
    allowance = world.rt.settings.registrations_per_hour
    rows = "".join(f"SPG-TEN-{i:04d},SHPLG-1,plug {i},\n" for i in range(allowance + 1))
    r = await _import(world, "serial,model,name,tags\n" + rows, world.token_b)
    assert r.status_code == 429
    assert f"{allowance + 1} rows" in r.json()["detail"]
    assert not any(s.startswith("SPG-TEN-") for s in await _serials(world, world.token_b))
    # within the allowance it goes through, and re-importing it costs nothing more
    few = "serial,model,name,tags\n" + rows.splitlines(keepends=True)[0]
    assert (await _import(world, few, world.token_b)).json()["imported"] == 1
    assert (await _import(world, few, world.token_b)).json()["unchanged"] == 1


async def test_import_needs_a_token(world: World) -> None:
    r = await world.client.post("/api/v1/devices:import", content=b"x", headers=CSV)
    assert r.status_code == 401


async def test_every_simulated_model_imports_and_reports(world: World) -> None:
    text = """serial,model,name,tags
SPG-EVERY-1,SHPLG-1,,
LGM-EVERY-1,LG-MULTI-4,,
PC-EVERY0001-001,power-controller-v10,,
300000000001,OMNIMETER-V4,,
4016AB00CD01,PUSH3,,
1900000001,D101,,
1700000003,D103,,
"""
    report = (await _import(world, text)).json()
    assert (report["imported"], report["refused"]) == (7, [])
    devices = await _serials(world)
    for serial in ("SPG-EVERY-1", "LGM-EVERY-1", "PC-EVERY0001-001", "300000000001",
                   "4016AB00CD01", "1900000001", "1700000003"):  # fmt: skip
        one = await world.client.get(f"/api/v1/devices/{devices[serial]['id']}",
                                     headers=world.auth())  # fmt: skip
        assert one.status_code == 200
        assert one.json()["name"] == serial  # an empty name is the serial


async def test_a_field_too_large_to_read_is_refused_by_its_line(world: World) -> None:
    huge = "x" * 200_000  # past the CSV reader's field limit, within the body limit
    text = f"serial,model,name,tags\nSPG-IMP-BIG1,SHPLG-1,{huge},\nSPG-IMP-BIG2,SHPLG-1,ok,\n"
    r = await _import(world, text)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["imported"]) == (2, 1)
    [refused] = report["refused"]
    assert refused["line"] == 2 and "field" in refused["reason"]
    assert set(await _serials(world)) >= {"SPG-IMP-BIG2"}
    assert "SPG-IMP-BIG1" not in await _serials(world)


async def test_a_nul_character_in_a_name_or_tag_is_refused_by_its_line(world: World) -> None:
    text = (
        "serial,model,name,tags\n"
        "SPG-IMP-NUL1,SHPLG-1,Hall\x00lamp,\n"
        "SPG-IMP-NUL2,SHPLG-1,Desk,hall;\x00\n"
        "SPG-IMP-NUL3,SHPLG-1,Kettle,kitchen\n"
    )
    r = await _import(world, text)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 1
    refused = {x["line"]: x["reason"] for x in report["refused"]}
    assert refused[2].startswith("name:") and refused[3].startswith("tags:")
    assert "NUL" in refused[2]
    assert {"SPG-IMP-NUL1", "SPG-IMP-NUL2"}.isdisjoint(await _serials(world))


async def test_unicode_line_separators_inside_a_field_do_not_split_its_row(world: World) -> None:
    names = ["Hall\u2028lamp", "Desk\x0cstrip", "Barn\x85light"]  # LS, form feed, NEL
    rows = "".join(f"SPG-IMP-LS{i},SHPLG-1,{n},\n" for i, n in enumerate(names))
    report = (await _import(world, "serial,model,name,tags\n" + rows)).json()
    assert (report["rows"], report["imported"], report["refused"]) == (3, 3, [])
    lines = "\n".join(
        json.dumps({"serial": f"SPG-IMP-JLS{i}", "model": "SHPLG-1", "name": n}, ensure_ascii=False)
        for i, n in enumerate(names)
    )
    r = await world.client.post(
        "/api/v1/devices:import",
        content=lines.encode(),
        headers={"Content-Type": "application/x-ndjson", **world.auth()},
    )
    assert (r.json()["imported"], r.json()["refused"]) == (3, [])
    devices = await _serials(world)
    assert [devices[f"SPG-IMP-LS{i}"]["name"] for i in range(3)] == names
    assert [devices[f"SPG-IMP-JLS{i}"]["name"] for i in range(3)] == names


async def test_a_tag_longer_than_an_ffr_group_can_name_is_refused_by_its_line(
    world: World,
) -> None:
    longest, too_long = "h" * 100, "h" * 101
    text = (
        "serial,model,name,tags\n"
        f"PC-IMPTAG01-001,power-controller-v10,Boiler,{longest}\n"
        f"PC-IMPTAG02-001,power-controller-v10,Boiler 2,heaters;{too_long}\n"
    )
    report = (await _import(world, text)).json()
    assert report["imported"] == 1
    assert report["refused"] == [
        {"line": 3, "reason": "tags: 'hhhhhhhhhhhh…' is longer than 100 characters"}
    ]
    jsonl = json.dumps({"serial": "PC-IMPTAG03-001", "model": "power-controller-v10",
                        "name": "Boiler 3", "tags": [too_long]})  # fmt: skip
    r = await world.client.post(
        "/api/v1/devices:import",
        content=jsonl.encode(),
        headers={"Content-Type": "application/x-ndjson", **world.auth()},
    )
    assert r.json()["refused"] == [{"line": 1, "reason": report["refused"][0]["reason"]}]
    assert {"PC-IMPTAG02-001", "PC-IMPTAG03-001"}.isdisjoint(await _serials(world))
    # every tag an import stores is one an FFR group can select by
    body = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 1, "tag": longest}
    r = await world.client.post("/api/v1/ffr/groups", json=body, headers=world.auth())
    assert r.status_code == 201, r.text
    assert r.json()["devices"] == [(await _serials(world))["PC-IMPTAG01-001"]["id"]]
