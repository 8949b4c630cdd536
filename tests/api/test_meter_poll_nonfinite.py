"""A polled meter answering NaN or infinity for a figure sent no reading: the answer is
malformed like any other (a warning, no PIN in it), and the last good reading stays on
the native API and in the history (JSON cannot carry NaN; a strict client breaks on it).
The smart-MAIC face serves simulated meters only, so a polled one shows there not at all."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from switchgear.links.meterpoll import parse_reading
from switchgear.links.netguard import NetGuard, StaticResolver
from tests.api.test_meter_ssrf import METER, Net
from tests.conftest import World

GOOD = {"devid": METER["devid"], "time": "0", "pout": "1",
        "data": {"V1": {"value": "230.00"}, "A1": {"value": "0.43"}, "W1": {"value": "100"},
                 "Wh1": {"value": "1250"}, "PF1": {"value": "1.00"}, "Fr1": {"value": "50.00"},
                 "T": {"value": "31"}}}  # fmt: skip

# how a meter's firmware may write a figure it has no number for
NONFINITE = ['"NaN"', '"nan"', '"inf"', '"-Infinity"', '"1e400"', "NaN", "Infinity", "1e400"]
FIGURES = ["W1", "Wh1", "V1", "T"]


def answer_with(figure: str, raw: str) -> str:
    """The good answer with one figure's value written as `raw` JSON text."""
    text = json.dumps(GOOD)
    old = json.dumps(GOOD["data"][figure]["value"])  # type: ignore[index]
    key = f'"{figure}": {{"value": {old}}}'
    assert key in text
    return text.replace(key, f'"{figure}": {{"value": {raw}}}')


def strict(text: str) -> Any:
    """JSON as a strict client parses it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a JSON answer: {text[:300]}")

    return json.loads(text, parse_constant=refuse)


@dataclass
class Meter(Net):
    """A meter that answers `text` (the good reading until a test changes it)."""

    text: str = json.dumps(GOOD)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, text=self.text)


@pytest.fixture
async def meter(world: World) -> AsyncIterator[Meter]:
    dns = StaticResolver({"meter.lan": ["192.168.4.1"]})
    n = Meter(world, dns)
    poller = world.rt.poller
    poller.guard = NetGuard(world.rt.settings.meter_networks, dns)
    poller.client = httpx.AsyncClient(transport=httpx.MockTransport(n.answer))
    yield n


@pytest.mark.parametrize("raw", NONFINITE)
def test_a_nonfinite_figure_is_not_a_reading(raw: str) -> None:
    for figure in FIGURES:
        with pytest.raises(ValueError):
            parse_reading(7, answer_with(figure, raw), 0.0)


def test_a_finite_answer_is_still_a_reading() -> None:
    state = parse_reading(7, json.dumps(GOOD), 0.0)
    m = state.meters[0]
    assert (m.voltage_v, m.power_w, m.energy_wh, state.temperature_c) == (230.0, 100.0, 1250.0,
                                                                           31.0)  # fmt: skip


@pytest.mark.parametrize(
    ("figure", "raw"),
    [("W1", '"NaN"'), ("Wh1", '"1e400"'), ("V1", '"-Infinity"'), ("T", '"inf"'),
     ("W1", "NaN"), ("Wh1", "1e400"), ("V1", "Infinity"), ("T", "NaN")],
)  # fmt: skip
async def test_a_nonfinite_answer_keeps_the_last_good_reading(
    meter: Meter, caplog: pytest.LogCaptureFixture, figure: str, raw: str
) -> None:
    w = meter.w
    r = await meter.add("http://meter.lan/")
    assert r.status_code == 201, r.text
    device_id = r.json()["id"]
    await meter.advance(0)
    before = strict((await w.client.get(f"/api/v1/devices/{device_id}", headers=w.auth())).text)
    assert before["online"] is True and before["meters"][0]["power_w"] == 100.0

    meter.text = answer_with(figure, raw)
    with caplog.at_level(logging.INFO):
        await meter.advance(6)  # the D103's next poll
    assert len(meter.sent) == 2, "the meter was polled again"
    warned = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert any("not a reading" in m for m in warned), warned
    assert METER["devpass"] not in caplog.text

    r = await w.client.get(f"/api/v1/devices/{device_id}", headers=w.auth())
    assert r.status_code == 200, r.text
    after = strict(r.text)
    assert after["online"] is True
    # the last good reading, its energy carried on at its power for the 6 s since
    (good,), (now,) = before["meters"], after["meters"]
    assert now["energy_wh"] == pytest.approx(good["energy_wh"] + 100.0 * 6 / 3600, abs=1e-3)
    assert {**now, "energy_wh": 0} == {**good, "energy_wh": 0}
    h = await w.client.get(f"/api/v1/devices/{device_id}/history", headers=w.auth())
    assert h.status_code == 200, h.text
    updates = [s for s in strict(h.text)["statuses"] if s["kind"] == "update"]
    assert len(updates) == 1, updates  # the good poll's alone

    listed = await w.client.get("/api/v1/devices", headers=w.auth())
    assert next(d for d in strict(listed.text) if d["id"] == device_id)["online"] is True
