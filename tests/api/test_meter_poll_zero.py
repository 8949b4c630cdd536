"""A polled meter's "-0" (what real smart-MAIC meters report for no flow) is read as 0: no
reading the poller keeps holds a negative zero, so no face can render one."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import httpx
import pytest

from switchgear.links.meterpoll import parse_reading
from switchgear.links.netguard import NetGuard, StaticResolver
from tests.api.test_meter_ssrf import Net
from tests.api.test_negative_zero import negative_zeros
from tests.conftest import World

MINUS_ZERO = {"devid": "1728053249", "time": "0", "pout": "0",
              "data": {"V1": {"value": "230.00"}, "A1": {"value": "-0"}, "W1": {"value": "-0"},
                       "rW1": {"value": "-0.00"}, "PF1": {"value": "-0.0"},
                       "Wh1": {"value": "1250.5"}, "rWh1": {"value": "-0"},
                       "T": {"value": "-0"}}}  # fmt: skip


class MinusZeroNet(Net):
    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, text=json.dumps(MINUS_ZERO))


@pytest.fixture
async def net(world: World) -> AsyncIterator[Net]:
    dns = StaticResolver({"meter.lan": ["192.168.4.1"]})
    n = MinusZeroNet(world, dns)
    poller = world.rt.poller
    poller.guard = NetGuard(world.rt.settings.meter_networks, dns)
    poller.client = httpx.AsyncClient(transport=httpx.MockTransport(n.answer))
    yield n


def _signed_zeros(values: list[float | None]) -> list[int]:
    return [i for i, v in enumerate(values) if v == 0 and math.copysign(1.0, v) < 0]


def test_a_parsed_minus_zero_is_zero() -> None:
    state = parse_reading(7, json.dumps(MINUS_ZERO), 0.0)
    m = state.meters[0]
    values = [m.voltage_v, m.current_a, m.power_w, m.reverse_power_w, m.power_factor,
              m.frequency_hz, m.energy_wh, m.reverse_energy_wh, state.temperature_c]  # fmt: skip
    assert _signed_zeros(values) == []
    assert (m.voltage_v, m.energy_wh, m.power_w) == (230.0, 1250.5, 0.0)


async def test_a_polled_minus_zero_reaches_no_reading(net: Net) -> None:
    r = await net.add("http://meter.lan:8080/")
    assert r.status_code == 201, r.text
    device_id = r.json()["id"]
    await net.advance(0)
    assert net.sent, "the meter was polled"
    shadow = net.w.rt.engine.shadow(device_id)
    assert shadow.online and shadow.meters
    m = shadow.meters[0]
    assert _signed_zeros([m.current_a, m.power_w, m.reverse_power_w, m.power_factor,
                          m.reverse_energy_wh, shadow.temperature_c]) == []  # fmt: skip
    h = await net.w.client.get(f"/api/v1/devices/{device_id}/history", headers=net.w.auth())
    assert h.status_code == 200 and negative_zeros(h.json()) == [], h.text
