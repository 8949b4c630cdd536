"""The smart-MAIC meter's wire: the getdata JSON, its keys per model, values as strings."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring

from starlette.responses import Response

from switchgear.core.model import DeviceState, Json, MeterReading

# seconds between allowed requests, by meter version (vendor document)
INTERVAL_S = {"standard": 60.0, "extended": 6.0}
# the version a model ships as when the registry does not say
DEFAULT_VERSION = {"D101": "standard", "D103": "extended"}

# per phase, in the order real meters send them: key stem, name stem, unit, reading, format
PHASE_FIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("V", "Voltage", "V", "voltage_v", ".2f"),
    ("A", "Current", "A", "current_a", ".2f"),
    ("W", "Active Power", "W", "power_w", ".0f"),
    ("rW", "Rev. Active Power", "W", "reverse_power_w", ".0f"),
    ("Wh", "Energy", "Wh", "energy_wh", ".0f"),
    ("rWh", "Rev. Energy", "Wh", "reverse_energy_wh", ".0f"),
    ("PF", "Power Factor", "", "power_factor", ".2f"),
    ("Fr", "Frequency", "Hz", "frequency_hz", ".2f"),
)


@functools.cache
def _layout(suffix: str) -> tuple[tuple[str, str, str, Callable[[MeterReading], float], str], ...]:
    """One phase's keys and names with their suffix, built once per suffix."""
    return tuple(
        (f"{key}{suffix}", f"{name} {suffix}".rstrip(), unit, operator.attrgetter(attr), spec)
        for key, name, unit, attr, spec in PHASE_FIELDS
    )


def _fmt(value: float, spec: str) -> str:
    """A reading as the meter prints it: never a negative zero (`-0`, `-0.00`)."""
    text = format(value, spec)
    return text[1:] if text[0] == "-" and not text.strip("-0.") else text


def _entry(name: str, unit: str, value: str) -> dict[str, Json]:
    return {"name": name, "unit": unit, "value": value}


def head(devid: str, state: DeviceState, now: float) -> dict[str, str]:
    """Everything before `data`: the meter's id, its clock, its relay."""
    on = bool(state.channels and state.channels[0].on)
    body = {"devid": devid, "time": str(int(now)), "pout": "1" if on else "0"}
    if len(state.meters) > 1:
        body["powset"] = "0"
    return body


def compact(body: Json) -> str:
    """JSON as the meter lays it out: no spaces, non-ASCII as raw UTF-8 (`"unit":"°C"`)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def getdata_text(devid: str, state: DeviceState, now: float, readings_json: str) -> str:
    """The document's JSON, laid out as the meter lays it out: the head, then `data`
    already encoded (see `compact`). D103 keys carry phase suffixes and `br` separators;
    D101 none."""
    quote = encode_basestring  # json.dumps's own escaper: the head is only strings
    fields = [f"{quote(k)}:{quote(v)}" for k, v in head(devid, state, now).items()]
    return "{" + ",".join(fields) + ',"data":' + readings_json + "}"


def readings(state: DeviceState) -> dict[str, Json]:
    """The `data` object: per phase readings, totals on three phases, temperature."""
    data: dict[str, Json] = {}
    three = len(state.meters) > 1
    for m in state.meters:
        suffix = str(m.index + 1) if three else ""
        for key, name, unit, get, spec in _layout(suffix):
            data[key] = {"name": name, "unit": unit, "value": _fmt(get(m), spec)}
        if three:
            data[f"br{m.index}"] = {"name": "\n"}
    if three:
        data["A"] = _entry("Current", "A", _fmt(sum(m.current_a for m in state.meters), ".2f"))
        data["W"] = _entry("Active Power", "W", _fmt(sum(m.power_w for m in state.meters), ".0f"))
        data["TWh"] = _entry("Energy", "Wh", _fmt(sum(m.energy_wh for m in state.meters), ".0f"))
    temperature = state.temperature_c if state.temperature_c is not None else 0.0
    data["T"] = _entry("Temperature", "°C", _fmt(temperature, ".0f"))
    return data


class MeterResponse(Response):
    """The meter's answer: JSON, its `Server` name, and it closes the connection; the
    headers are encoded once, not per answer."""

    media_type = "application/json; charset=utf-8"
    HEADERS = (
        (b"server", b"smart-MAC"),
        (b"connection", b"close"),
        (b"content-type", media_type.encode()),
    )

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        length = (b"content-length", str(len(self.body)).encode())
        self.raw_headers = [*self.HEADERS[:2], length, self.HEADERS[2]]


def reply(status: int, body: Json) -> MeterResponse:
    """A short answer in the meter's shape (`{"error": ...}` and the like)."""
    return MeterResponse(compact(body), status_code=status)
