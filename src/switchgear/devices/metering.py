"""Metering points: a load, its energy registers, and the readings a meter reports."""

from __future__ import annotations

import math
from typing import Any

from switchgear.core.model import MeterReading
from switchgear.devices.physics import ConstantLoad, Load, ThermostatLoad, jitter, load_from_json


class MeterPoint:
    """One metered circuit: the load on it and import/export registers that never go back."""

    def __init__(self, index: int, t: float, nominal_v: float) -> None:
        self.index = index
        self.nominal_v = nominal_v
        self.load: Load = ConstantLoad(t, 0.0)
        self.base_import_wh = 0.0  # energy of loads attached before the current one
        self.base_export_wh = 0.0

    def energy(self) -> tuple[float, float]:
        return (
            self.base_import_wh + self.load.import_wh,
            self.base_export_wh + self.load.export_wh,
        )

    def replace_load(self, t: float, description: dict[str, Any]) -> None:
        fresh = {k: v for k, v in description.items() if k != "state"}
        new = load_from_json(fresh, t, self.nominal_v)
        self.load.advance(t)
        self.base_import_wh, self.base_export_wh = self.energy()
        new.set_supplied(t, self.load.supplied)
        self.load = new

    def reading(self, t: float, voltage_v: float, frequency_hz: float) -> MeterReading:
        p = self.load.power(t)
        pf = self.load.power_factor
        imp, exp = self.energy()
        current = abs(p) / (voltage_v * pf) if voltage_v > 0 else 0.0
        # index, voltage, current, power, reverse power, power factor, frequency, energies
        # (positional: one reading per metering point per event)
        return MeterReading(self.index, voltage_v, current, forward(p), forward(-p), pf,
                            frequency_hz, imp, exp)  # fmt: skip

    def water_temperature(self) -> float | None:
        return self.load.temp_c if isinstance(self.load, ThermostatLoad) else None

    def to_json(self) -> dict[str, Any]:
        return {"base": [self.base_import_wh, self.base_export_wh], "load": self.load.to_json()}

    def restore(self, d: dict[str, Any]) -> None:
        self.base_import_wh, self.base_export_wh = (float(x) for x in d["base"])
        self.load = load_from_json(d["load"], float(d["load"]["state"]["t"]), self.nominal_v)


def forward(watts: float) -> float:
    """The part of a signed power that flows one way: `watts` if positive, else 0.0.

    Never -0.0: `max(-p, 0.0)` with p == 0 keeps max's first argument, -0.0, which every
    face would print as "-0.0" (a reverse flow where there is none)."""
    return watts if watts > 0 else 0.0


def installed_registers(text: str) -> list[float]:
    """Import registers a meter already carries when it joins (device attribute
    `registers_wh`, comma-separated Wh per metering point); an unreadable entry is 0."""
    out = []
    for part in text.split(",") if text else ():
        try:
            wh = float(part)
        except ValueError:
            wh = 0.0
        out.append(wh if math.isfinite(wh) and wh >= 0 else 0.0)
    return out


def wobble(t: float, seed: float, amplitude: float) -> float:
    """A small deterministic variation for readings (voltage, frequency, temperature)."""
    return amplitude * jitter(t, 97.0, seed)
