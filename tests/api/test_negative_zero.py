"""Readings on the native API never carry a negative zero ("-0.0" reads as a reverse flow)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from switchgear.api.schemas import meter_out
from switchgear.core.model import MeterReading
from tests.conftest import World, add


def negative_zeros(body: Any, at: str = "") -> list[str]:
    """Where in a JSON document a number is -0.0."""
    if isinstance(body, dict):
        return [p for k, v in body.items() for p in negative_zeros(v, f"{at}.{k}")]
    if isinstance(body, list):
        return [p for i, v in enumerate(body) for p in negative_zeros(v, f"{at}[{i}]")]
    if isinstance(body, float) and body == 0 and math.copysign(1.0, body) < 0:
        return [at]
    return []


@pytest.mark.parametrize(
    ("model", "load"),
    [
        ("SHPLG-1", {"watts": 500}),
        ("D103", {"watts": 300}),
        ("OMNIMETER-V4", {"model": {"type": "generation", "watts": 0}}),
    ],
)
async def test_a_meter_with_its_relay_off_shows_no_negative_zero(
    world: World, model: str, load: dict[str, Any]
) -> None:
    w = world
    d = await add(w.rt, 1, f"NZ-{model}-1", model)
    r = await w.client.get(f"/api/v1/devices/{d.id}", headers=w.auth())
    channel = len(r.json()["meters"]) - 1
    r = await w.client.put(
        f"/api/v1/sim/devices/{d.id}/load", json={"channel": channel, **load}, headers=w.auth()
    )
    assert r.status_code == 200, r.text
    r = await w.client.get(f"/api/v1/devices/{d.id}", headers=w.auth())
    assert r.status_code == 200, r.text
    body = json.loads(r.text)
    assert body["channels"][0]["on"] is False
    assert body["meters"] and negative_zeros(body) == []
    assert "-0.0" not in r.text and "-0," not in r.text


def test_a_reported_minus_zero_or_noise_below_the_rounding_shows_as_zero() -> None:
    # what a real meter polled over HTTP may report ("-0", or -0.001 W of noise)
    m = MeterReading(0, 230.0, -0.0, -0.0, -0.001, 1.0, 50.0, 12.5, -0.0)
    out = meter_out(m).model_dump()
    assert negative_zeros(out) == []
    assert out["reverse_power_w"] == 0.0 and out["energy_wh"] == 12.5
