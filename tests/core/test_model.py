"""Records built by fast_init behave exactly like the dataclasses they replace."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from switchgear.core.model import DeviceState, MeterReading, StatusKind, StatusRecord, fast_init


def test_defaults_factories_equality_and_immutability_hold() -> None:
    a, b = DeviceState(7, 1.0, True), DeviceState(device_id=7, ts=1.0, online=True)
    assert a == b and a.channels == () and a.temperature_c is None
    assert a.extra == {} and a.extra is not b.extra  # a fresh dict per record
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.ts = 2.0  # type: ignore[misc]
    r = StatusRecord("x", 7, 1.0, StatusKind.RELAY, "api", {"on": True})
    assert (r.channel, r.account_id) == (None, None)
    assert dataclasses.replace(r, channel=1).channel == 1


def test_the_signature_is_the_dataclass_one() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Plain:
        index: int
        voltage_v: float

    assert "(index, voltage_v, current_a, power_w," in str(inspect.signature(MeterReading))
    assert str(inspect.signature(DeviceState)).endswith("extra=<factory>)")
    with pytest.raises(TypeError):
        MeterReading(0, 230.0)  # type: ignore[call-arg]
    assert fast_init(Plain)(1, 2.0) == Plain(1, 2.0)


def test_only_frozen_slotted_dataclasses() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError, match="frozen, slotted"):
        fast_init(NoSlots)
