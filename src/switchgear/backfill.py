"""A fresh demo's week of history: statuses at each family's cadence, written in bulk.

The demo's devices join with registers that carry years of energy (`registers_wh`), but
no history: every plot would start empty. The backfill writes the week before the first
start as the devices would have reported it — an `update` status per sample period, with
the loads they carry now following a day's shape — so that each metering point's import
register, read back through the week, climbs to exactly the value it carries now. It
goes through the store's group commit (`Store.commit`, storage/bulk.py) in large
batches, once: the demo calls it before it records that it is seeded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from switchgear.core.catalog import DeviceModel
from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import (
    Device,
    DeviceState,
    Family,
    Json,
    StatusKind,
    StatusRecord,
    short_id,
)
from switchgear.core.pcconfig import FIRMWARE
from switchgear.core.ports import Batch, Store
from switchgear.devices.physics import jitter

log = logging.getLogger(__name__)

WEEK_S = 7 * 86_400.0
BATCH_ROWS = 20_000  # statuses per group commit


@dataclass(frozen=True)
class DayShape:
    """How a family's load follows the day: 24 hourly factors around its mean (1.0)."""

    hourly: tuple[float, ...]
    spread: float  # ± share of random variation from one period to the next


# Households: low at night, a morning and a larger evening peak; offices: working hours;
# a fridge: nearly flat, a little more in the warm afternoon.
HOME = (0.5, 0.45, 0.4, 0.4, 0.4, 0.5, 0.9, 1.4, 1.3, 1.0, 0.9, 0.9,
        1.0, 0.9, 0.8, 0.8, 0.9, 1.2, 1.6, 1.8, 1.7, 1.4, 1.0, 0.7)  # fmt: skip
OFFICE = (0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.8, 1.6, 1.8, 1.8, 1.7,
          1.5, 1.7, 1.8, 1.7, 1.5, 1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2)  # fmt: skip
FRIDGE = (0.9, 0.9, 0.85, 0.85, 0.85, 0.9, 0.95, 1.0, 1.0, 1.05, 1.1, 1.1,
          1.15, 1.15, 1.15, 1.1, 1.1, 1.05, 1.05, 1.0, 1.0, 0.95, 0.95, 0.9)  # fmt: skip
SHAPES: dict[Family, DayShape] = {
    Family.PLUG: DayShape(FRIDGE, 0.1),
    Family.STRIP: DayShape(OFFICE, 0.15),
    Family.METER: DayShape(HOME, 0.2),
}


@dataclass(frozen=True)
class Heater:
    """A water heater behind a power controller, as the backfill runs it."""

    rated_w: float = 4000.0
    tank_litres: float = 170.0
    setpoint_c: float = 60.0
    hysteresis_c: float = 5.0
    inlet_c: float = 12.0
    loss_k_per_h: float = 0.15  # standing loss
    hot_share: float = 0.4  # of a draw's litres, what comes from the tank (the rest cold)
    # hot-water draws: (start hour, end hour, litres per minute), as HOUSEHOLD_DRAWS
    draws: tuple[tuple[float, float, float], ...] = (
        (6.5, 6.75, 8.0), (7.0, 7.25, 4.0), (18.5, 18.75, 3.0), (21.0, 21.2, 6.0),
    )  # fmt: skip

    def drawn_litres(self, t0: float, t1: float) -> float:
        """Litres drawn between two instants (UTC hours of the day)."""
        total = 0.0
        day = math.floor(t0 / 86_400) * 86_400
        while day < t1:
            for start, end, rate in self.draws:
                a, b = max(t0, day + start * 3600), min(t1, day + end * 3600)
                if b > a:
                    total += rate * (b - a) / 60
            day += 86_400
        return total


HEATER = Heater()


async def backfill(
    store: Store,
    devices: Iterable[Device],
    states: Sequence[DeviceState],
    now: float,
    span_s: float = WEEK_S,
) -> int:
    """Write `span_s` of history before `now` for each device (with its state now, in the
    same order); the number of statuses written."""
    written = 0
    batch: list[StatusRecord] = []
    for device, state in zip(devices, states, strict=True):
        batch.extend(device_history(device, state, now, span_s))
        if len(batch) >= BATCH_ROWS:
            await store.commit(Batch(statuses=batch))
            written += len(batch)
            batch = []
    if batch:
        await store.commit(Batch(statuses=batch))
        written += len(batch)
    log.info("demo backfill: %d statuses over %.0f days", written, span_s / 86_400)
    return written


def device_history(
    device: Device, state: DeviceState, now: float, span_s: float
) -> list[StatusRecord]:
    """A device's statuses over the span before `now` (none for a device without meters)."""
    model = catalog_model(device.model)
    if not state.meters:
        return []
    if model.family is Family.LOAD_CONTROLLER:
        return _heater_history(device, model, state, now, span_s)
    return _meter_history(device, model, state, now, span_s)


def _times(model: DeviceModel, now: float, span_s: float) -> list[float]:
    """Update instants on the device's cadence, the last one `now`, oldest first."""
    period = model.sample_period_s
    n = int(span_s // period)
    return [now - (n - k) * period for k in range(n + 1)]


def _factor(shape: DayShape, t: float, seed: float) -> float:
    hour = int((t % 86_400) // 3600)
    return max(0.0, shape.hourly[hour] * (1 + shape.spread * jitter(t, 37.0, seed)))


def _meter_history(
    device: Device, model: DeviceModel, state: DeviceState, now: float, span_s: float
) -> list[StatusRecord]:
    shape = SHAPES.get(model.family, SHAPES[Family.METER])
    times = _times(model, now, span_s)
    period = model.sample_period_s
    per_phase = model.metering != "channel" and model.phases > 1
    # each point's average power per period (the first instant only starts the series)
    watts = [
        [m.power_w * _factor(shape, t - period / 2, device.id * 10.0 + m.index) for t in times]
        for m in state.meters
    ]
    # registers walked back from the value each carries now
    registers = []
    for m, ws in zip(state.meters, watts, strict=True):
        regs = [m.energy_wh] * len(times)
        for k in range(len(times) - 1, 0, -1):
            regs[k - 1] = max(regs[k] - ws[k] * period / 3600, 0.0)
        registers.append(regs)
    on: Json = [c.on for c in state.channels] if len(state.channels) != 1 else state.channels[0].on
    out = []
    for k, t in enumerate(times[1:], start=1):
        total_w = sum(ws[k] for ws in watts)
        volts = [
            m.voltage_v * (1 + 0.01 * jitter(t, 53.0, device.id + m.index)) for m in state.meters
        ]
        amps = [ws[k] / (v * max(m.power_factor, 0.1)) if v > 0 else 0.0
                for ws, v, m in zip(watts, volts, state.meters, strict=True)]  # fmt: skip
        data: dict[str, Json] = {
            "duration": period,
            "power": round(total_w, 2),
            "energy_wh": round(sum(r[k] for r in registers), 3),
            "voltage": round(volts[0], 2),
            "current": round(sum(amps), 3),
            "frequency": _hz(model, device, t),
            "temperature": round(24.0 + 0.002 * total_w + 0.4 * jitter(t, 97.0, device.id), 2)
            if model.has_temperature
            else None,
            "on": on,
        }  # fmt: skip
        if per_phase:
            data["phases"] = [
                {"power": round(ws[k], 2), "voltage": round(v, 2), "current": round(a, 3),
                 "energy_wh": round(r[k], 3)}
                for ws, v, a, r in zip(watts, volts, amps, registers, strict=True)
            ]  # fmt: skip
        out.append(_record(device, t, data))
    return out


def _heater_history(
    device: Device, model: DeviceModel, state: DeviceState, now: float, span_s: float
) -> list[StatusRecord]:
    """The week of a water heater that was on (its relay closed) until the demo started:
    a thermostat heating back what the household's draws took, at the sample cadence."""
    h = HEATER
    times = _times(model, now, span_s)
    period = model.sample_period_s
    heat_k_per_s = h.rated_w / (h.tank_litres * 4186.0)  # K per second at full power
    temp = h.setpoint_c - h.hysteresis_c / 2
    calling = False
    volts = model.nominal_voltage_v
    has_flow = _has_flowmeter(state)
    out = [_record(device, times[0], {"on": True, "toggleIn": 0}, StatusKind.RELAY, "api", 0)]
    for k, t in enumerate(times[1:], start=1):
        t0 = times[k - 1]
        litres = h.drawn_litres(t0, t) * h.hot_share
        temp -= litres / h.tank_litres * (temp - h.inlet_c) + h.loss_k_per_h * period / 3600
        if temp < h.setpoint_c - h.hysteresis_c:
            calling = True
        heating_s = 0.0
        if calling:  # heat until the setpoint, at most the whole period
            heating_s = min(period, (h.setpoint_c - temp) / heat_k_per_s)
            temp += heating_s * heat_k_per_s
            calling = temp < h.setpoint_c - 1e-9
        wh = h.rated_w * heating_s / 3600
        avg_w = wh * 3600 / period
        v = volts * (1 + 0.01 * jitter(t, 53.0, device.id))
        device_c = 20.0 + 0.6 * (avg_w / v)
        data: dict[str, Json] = {
            "duration": round(period),
            "current": round(avg_w / v, 2),
            "voltage": round(v, 2),
            "power": round(wh, 2),
            "temperature": round(device_c * 9 / 5 + 32, 1),
            "frequency": _hz(model, device, t),
            "flow": round(litres / (period / 60), 2) if has_flow else None,
            "on": True,
            "toggleIn": 0,
            "firmware": FIRMWARE,
            "water_temperature": round(temp, 2),
            "capacity_level": None,
        }  # fmt: skip
        out.append(_record(device, t, data))
    return out


def _hz(model: DeviceModel, device: Device, t: float) -> float:
    """The grid's frequency as the device measured it (the twins' own wobble)."""
    return round(model.nominal_frequency_hz + 0.012 * jitter(t, 97.0, device.id * 3.0), 3)


def _has_flowmeter(state: DeviceState) -> bool:
    config = state.extra.get("config")
    if not isinstance(config, dict):
        return False
    flow = config.get("flowmeter")
    return isinstance(flow, dict) and flow.get("type") not in (None, "none")


def _record(
    device: Device,
    t: float,
    data: dict[str, Json],
    kind: StatusKind = StatusKind.UPDATE,
    reason: str = "auto",
    channel: int | None = None,
) -> StatusRecord:
    return StatusRecord(short_id(), device.id, t, kind, reason, data, channel, device.account_id)
