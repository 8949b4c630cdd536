"""Rendered answers kept per shadow: the same bytes as rendering afresh, never stale."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from switchgear.core.model import ChannelState, DeviceState, MeterReading
from switchgear.dialects.meterhttp import wire as meter
from switchgear.dialects.render import ShadowCache
from switchgear.dialects.smartplug import wire as plug


def state(phases: int, on: bool, watts: float = 812.4) -> DeviceState:
    meters = tuple(
        MeterReading(i, 231.2 + i, watts / 231.2, watts, 0.0, 0.98, 50.01, 12_345.6 + i, 0.0)
        for i in range(phases)
    )
    return DeviceState(1, 1_700_000_000.0, True, (ChannelState(0, on),), meters, 31.4)


def test_getdata_text_is_byte_for_byte_the_rendered_document() -> None:
    for phases in (1, 3):
        for on in (False, True):
            s = state(phases, on)
            text = meter.getdata_text(
                "1900066641", s, 1_700_000_123.9, meter.compact(meter.readings(s))
            )
            whole = {**meter.head("1900066641", s, 1_700_000_123.9), "data": meter.readings(s)}
            assert text == json.dumps(whole, separators=(",", ":"), ensure_ascii=False)
            assert json.loads(text)["pout"] == ("1" if on else "0")


def test_fetch_json_is_what_jsonresponse_sends() -> None:
    s = state(1, True)
    assert plug.fetch_json(s) == JSONResponse(plug.fetch_body(s)).body


def test_a_new_shadow_is_rendered_again_and_the_same_one_is_not() -> None:
    renders: list[DeviceState] = []

    def render(s: DeviceState) -> str:
        renders.append(s)
        return json.dumps(meter.readings(s))

    cache: ShadowCache[str] = ShadowCache(render)
    first = state(1, True, watts=100.0)
    a = cache.get(7, first)
    assert cache.get(7, first) is a and renders == [first]
    second = state(1, True, watts=2_000.0)  # the device reported: a new shadow object
    b = cache.get(7, second)
    assert json.loads(b)["W"]["value"] == "2000" and renders == [first, second]
    assert cache.get(8, first) == a  # devices are kept apart
