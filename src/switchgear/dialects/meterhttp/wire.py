"""The smart-MAIC meter's wire: the getdata JSON, its keys per model, values as strings."""

from __future__ import annotations

from collections.abc import Callable

from switchgear.core.model import DeviceState, Json, MeterReading

# seconds between allowed requests, by meter version (vendor document)
INTERVAL_S = {"standard": 60.0, "extended": 6.0}
# the version a model ships as when the registry does not say
DEFAULT_VERSION = {"D101": "standard", "D103": "extended"}

Field = tuple[str, str, str, Callable[[MeterReading], str]]


def _fixed(digits: int, get: Callable[[MeterReading], float]) -> Callable[[MeterReading], str]:
    return lambda m: f"{get(m):.{digits}f}"


# per phase, in the order real meters send them: key stem, name stem, unit, value
PHASE_FIELDS: tuple[Field, ...] = (
    ("V", "Voltage", "V", _fixed(2, lambda m: m.voltage_v)),
    ("A", "Current", "A", _fixed(2, lambda m: m.current_a)),
    ("W", "Active Power", "W", _fixed(0, lambda m: m.power_w)),
    ("rW", "Rev. Active Power", "W", _fixed(0, lambda m: m.reverse_power_w)),
    ("Wh", "Energy", "Wh", _fixed(0, lambda m: m.energy_wh)),
    ("rWh", "Rev. Energy", "Wh", _fixed(0, lambda m: m.reverse_energy_wh)),
    ("PF", "Power Factor", "", _fixed(2, lambda m: m.power_factor)),
    ("Fr", "Frequency", "Hz", _fixed(2, lambda m: m.frequency_hz)),
)


def _entry(name: str, unit: str, value: str) -> dict[str, Json]:
    return {"name": name, "unit": unit, "value": value}


def getdata(devid: str, state: DeviceState, now: float) -> dict[str, Json]:
    """The document's JSON: D103 keys with phase suffixes and `br` separators; D101 none."""
    data: dict[str, Json] = {}
    three = len(state.meters) > 1
    for m in state.meters:
        suffix = str(m.index + 1) if three else ""
        for key, name, unit, value in PHASE_FIELDS:
            data[f"{key}{suffix}"] = _entry(f"{name} {suffix}".rstrip(), unit, value(m))
        if three:
            data[f"br{m.index}"] = {"name": "\n"}
    if three:
        data["A"] = _entry("Current", "A", f"{sum(m.current_a for m in state.meters):.2f}")
        data["W"] = _entry("Active Power", "W", f"{sum(m.power_w for m in state.meters):.0f}")
        data["TWh"] = _entry("Energy", "Wh", f"{sum(m.energy_wh for m in state.meters):.0f}")
    temperature = state.temperature_c if state.temperature_c is not None else 0.0
    data["T"] = _entry("Temperature", "°C", f"{temperature:.0f}")
    on = bool(state.channels and state.channels[0].on)
    body: dict[str, Json] = {"devid": devid, "time": str(int(now)), "pout": "1" if on else "0"}
    if three:
        body["powset"] = "0"
    body["data"] = data
    return body
