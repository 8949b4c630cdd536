"""Push3 `SetTime` takes its numbers zero-padded, as the document shows them ("MM"), and
unpadded ("3"), as clients build them from a date; out-of-range values and anything but
ASCII digits are still refused with 400 (seed 003)."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.dialects.push3.channels import hub
from tests.conftest import World
from tests.dialects.push3kit import gateway_and_meter

ADDRESS = "000350000966"
PADDED = {"year": "2030", "month": "03", "day": "05", "hour": "07", "minutes": "08",
          "seconds": "09"}  # fmt: skip
UNPADDED = {"year": "2030", "month": "3", "day": "5", "hour": "7", "minutes": "8", "seconds": "9"}


async def _key(w: World) -> str:
    return await gateway_and_meter(w, ADDRESS)


async def _send(w: World, key: str, command: str, params: dict[str, Any]) -> Any:
    body = {"command": command, "target": "meter", "target_id": ADDRESS, "params": params}
    return await w.client.post(f"/sendCommand?key={key}", json=body)


async def _answer(w: World, sent: Any) -> Any:
    """The gateway's answer to a command, once the manual clock let the gateway run it."""
    await w.rt.advance(2)
    channels = hub(w.rt)
    backlog = channels.replay(channels.get(sent["response_channel_id"]), 100)
    [answer] = [m for m in backlog if m["msg_id"] == sent["msg_id"]]
    return answer


MIXED = {**PADDED, "month": "3", "seconds": "9"}
NUMBERS = {**UNPADDED, "month": 3, "day": 5}


@pytest.mark.parametrize(
    "params", [UNPADDED, PADDED, MIXED, NUMBERS], ids=["unpadded", "padded", "mixed", "numbers"]
)
async def test_set_time_takes_padded_and_unpadded_numbers(
    world: World, params: dict[str, Any]
) -> None:
    key = await _key(world)
    r = await _send(world, key, "SetTime", params)
    assert r.status_code == 200, r.text
    answer = await _answer(world, r.json())
    assert (answer["success"], answer["error"]) == (True, None)
    r = await _send(world, key, "GetTariffData", {})
    assert r.status_code == 200, r.text
    answer = await _answer(world, r.json())
    # the meter's clock was set to 2030-03-05 07:08:09 and ran the few seconds since
    assert answer["data"]["meter_time"].startswith("2030-03-05 07:08:"), answer


@pytest.mark.parametrize(
    ("name", "value"),
    [("month", "13"), ("month", "0"), ("day", "32"), ("hour", "24"), ("minutes", "60"),
     ("seconds", "60"), ("month", "003"), ("year", "30"), ("year", "20300"),
     ("month", "3a"), ("month", " 3"), ("month", "-3"), ("month", ""), ("month", "+3"),
     ("month", "\u0663"), ("day", "\u0660\u0665"), ("month", 3.0), ("month", True),
     ("month", -3), ("month", None)],
)  # fmt: skip
async def test_set_time_still_refuses_out_of_range_and_non_digits(
    world: World, name: str, value: Any
) -> None:
    key = await _key(world)
    for base in (PADDED, UNPADDED):
        r = await _send(world, key, "SetTime", {**base, name: value})
        assert r.status_code == 400 and set(r.json()) == {"error"}, (name, value, r.text)
