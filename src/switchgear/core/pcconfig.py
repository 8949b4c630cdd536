"""The power controller's configuration: its sections, their limits, and its response codes.

Validation is pure: `plan_config` checks a whole request against the current config and
returns the new config with the device's response codes, or raises Refused with the
negative codes; nothing is applied until every section passed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from switchgear.core.model import Json
from switchgear.errors import InvalidInput

# Device response codes (seed README, section 002).
CODES: dict[int, str] = {
    10: "reset",
    100: "sensors refreshed",
    101: "relays refreshed",
    102: "on",
    103: "off",
    104: "on for period",
    105: "off for period",
    106: "on at time",
    107: "off at time",
    108: "FFR enabled",
    109: "FFR disabled",
    110: "flowmeter none",
    111: "flowmeter EUF4315K",
    112: "flowmeter TUF2000M",
    113: "capacity disabled",
    114: "capacity enabled",
    115: "limit power set",
    116: "keep-alive set",
    117: "schedule added",
    118: "schedule removed",
    119: "schedules cleared",
    120: "sample period set",
    121: "schedules disabled",
    122: "limit power disabled",
    1001: "FFR unchanged",
    1002: "sample period unchanged",
    -999: "unsupported sensor type",
    -998: "capacity trip too low",
    -997: "capacity return below trip",
    -996: "FFR period too short",
    -995: "FFR period too long",
    -994: "FFR delay negative",
    -993: "relay config unsupported",
    -992: "invalid relay command",
    -991: "pipe type invalid",
    -990: "pipe outer diameter invalid",
    -989: "pipe wall invalid",
    -988: "capacity minimum invalid",
    -987: "capacity maximum invalid",
    -986: "limit power invalid",
    -985: "invalid keep-alive, schedule or sample period",
}

FLOWMETERS = {"none": 110, "euf4315k": 111, "tuf2000m": 112}
PIPE_TYPES = ("copper", "pex", "pvc", "cpvc", "steel", "stainless", "cast_iron")
FFR_PERIODS = (1, 30)  # measurement periods (grid cycles) below the trip threshold
FFR_DELAY_MAX_S = 86_400
SAMPLE_PERIOD_S = (60, 86_400)
SCHEDULE_MAX = 39
SCHEDULE_NAMES = ("on", "off", "limit_power")
SCHEDULE_AHEAD_S = 366 * 86_400  # as far as a command's time or period may reach
FIRMWARE = "2.4.1"


class Refused(Exception):
    """The controller refused a request: its negative response codes, nothing applied."""

    def __init__(self, *codes: int) -> None:
        super().__init__(", ".join(CODES.get(c, str(c)) for c in codes))
        self.codes = codes


def default_config(flowmeter: str = "none") -> dict[str, Json]:
    return {
        "ffr": {
            "enabled": False,
            "tripThreshold": 59.7,
            "returnThreshold": 59.8,
            "periods": 10,
            "delay": 10,
            "maxBackOff": 0,
        },
        "capacity": {
            "enabled": False,
            "maxCapacity": 100.0,
            "minCapacity": 50.0,
            "lossPerLiter": 0.0,
            "lossPerIdleMinute": 0.0,
            "gainPerWattHour": 0.0,
        },
        "flowmeter": _flowmeter_default(flowmeter.lower()),
        "samplePeriod": 900,
        "schedule": [],
    }


def _flowmeter_default(kind: str) -> dict[str, Json]:
    """A fitted flowmeter as installed: a TUF2000M clamps on a 3/4" copper pipe."""
    if kind == "tuf2000m":
        return {"type": kind, "pipeOuterDiameter": 22.225, "pipeWallThickness": 0.8128,
                "pipeType": "copper"}  # fmt: skip
    return {"type": kind if kind in FLOWMETERS else "none"}


def number(value: Any) -> float | None:
    """A finite JSON number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def plan_config(
    current: Mapping[str, Json], request: Mapping[str, Any], nominal_hz: float, now: float
) -> tuple[dict[str, Json], list[int]]:
    """The config after `request` and the response codes; Refused/InvalidInput otherwise."""
    new = copy.deepcopy(dict(current))
    codes: list[int] = []
    errors: list[int] = []
    known = {"ffr", "capacity", "flowmeter", "samplePeriod", "schedule"}
    unknown = sorted(set(request) - known)
    if unknown:
        raise InvalidInput(f"unknown setting {unknown[0]!r}", field=unknown[0])
    if not request:
        raise InvalidInput("nothing to configure", field="info")
    steps = (
        ("ffr", _ffr),
        ("capacity", _capacity),
        ("flowmeter", _flowmeter),
        ("samplePeriod", _sample_period),
        ("schedule", _schedule),
    )
    for key, step in steps:
        if key in request:
            try:
                value, code = step(new[key], request[key], nominal_hz, now)
            except Refused as refused:
                errors.extend(refused.codes)
                continue
            new[key] = value
            codes.extend(code)
    if errors:
        raise Refused(*errors)
    return new, codes


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name} must be an object", field=name)
    return value


def _flag(d: Mapping[str, Any], name: str, current: bool) -> bool:
    for key in ("enable", "enabled"):  # written as `enable`, read back as `enabled`
        if key in d:
            if not isinstance(d[key], bool):
                raise InvalidInput(f"{name}.{key} must be true or false", field=key)
            return bool(d[key])
    return current


def _ffr(
    current: Json, request: Any, nominal_hz: float, now: float
) -> tuple[dict[str, Json], list[int]]:
    d = _object(request, "ffr")
    new = dict(current)
    new["enabled"] = _flag(d, "ffr", bool(current["enabled"]))
    for key in ("tripThreshold", "returnThreshold"):
        if key in d:
            f = number(d[key])
            if f is None:
                raise InvalidInput(f"ffr.{key} must be a number of hertz", field=key)
            new[key] = f
    trip, back = float(new["tripThreshold"]), float(new["returnThreshold"])
    # The model's frequency wobbles by ±0.012 Hz around nominal: thresholds sit below it.
    if not nominal_hz - 5 <= trip < back <= nominal_hz - 0.02:
        raise InvalidInput(
            f"need {nominal_hz - 5:g} <= tripThreshold < returnThreshold <= {nominal_hz - 0.02:g}",
            field="tripThreshold",
        )
    if "periods" in d:
        p = number(d["periods"])
        if p is None or p != int(p):
            raise InvalidInput("ffr.periods must be a whole number", field="periods")
        if p < FFR_PERIODS[0]:
            raise Refused(-996)
        if p > FFR_PERIODS[1]:
            raise Refused(-995)
        new["periods"] = int(p)
    for key in ("delay", "maxBackOff"):
        if key in d:
            s = number(d[key])
            if s is None:
                raise InvalidInput(f"ffr.{key} must be a number of seconds", field=key)
            if not 0 <= s <= FFR_DELAY_MAX_S:
                raise Refused(-994)
            new[key] = s
    if new == current:
        return new, [1001]
    return new, [108 if new["enabled"] else 109]


def _capacity(
    current: Json, request: Any, nominal_hz: float, now: float
) -> tuple[dict[str, Json], list[int]]:
    d = _object(request, "capacity")
    new = dict(current)
    new["enabled"] = _flag(d, "capacity", bool(current["enabled"]))
    if "maxCapacity" in d:
        v = number(d["maxCapacity"])
        if v is None or v > 1e9:
            raise Refused(-987)
        if v <= 0:
            raise Refused(-998)
        new["maxCapacity"] = v
    if "minCapacity" in d:
        v = number(d["minCapacity"])
        if v is None or v < 0:
            raise Refused(-988)
        new["minCapacity"] = v
    if float(new["minCapacity"]) >= float(new["maxCapacity"]):
        raise Refused(-997)
    for key in ("lossPerLiter", "lossPerIdleMinute", "gainPerWattHour"):
        if key in d:
            v = number(d[key])
            if v is None or not 0 <= v <= 1e6:
                raise InvalidInput(f"capacity.{key} must be a number >= 0", field=key)
            new[key] = v
    return new, [114 if new["enabled"] else 113]


def _flowmeter(
    current: Json, request: Any, nominal_hz: float, now: float
) -> tuple[dict[str, Json], list[int]]:
    d = _object(request, "flowmeter")
    kind = d.get("type")
    if not isinstance(kind, str) or kind.lower() not in FLOWMETERS:
        raise Refused(-999)
    kind = kind.lower()
    new: dict[str, Json] = {"type": kind}
    if kind == "tuf2000m":  # a clamp-on ultrasonic meter needs the pipe's geometry
        od = number(d.get("pipeOuterDiameter"))
        wall = number(d.get("pipeWallThickness"))
        pipe = d.get("pipeType")
        errors = []
        if not isinstance(pipe, str) or pipe.lower() not in PIPE_TYPES:
            errors.append(-991)
        if od is None or not 6 <= od <= 1000:
            errors.append(-990)
        if wall is None or od is None or not 0 < wall < od / 2:
            errors.append(-989)
        if errors:
            raise Refused(*errors)
        assert isinstance(pipe, str)
        new.update(pipeOuterDiameter=od, pipeWallThickness=wall, pipeType=pipe.lower())
    return new, [FLOWMETERS[kind]]


def _sample_period(
    current: Json, request: Any, nominal_hz: float, now: float
) -> tuple[int, list[int]]:
    v = number(request)
    if v is None or v != int(v) or not SAMPLE_PERIOD_S[0] <= v <= SAMPLE_PERIOD_S[1]:
        raise Refused(-985)
    return int(v), [1002 if int(v) == current else 120]


def _schedule(
    current: Json, request: Any, nominal_hz: float, now: float
) -> tuple[list[Json], list[int]]:
    if not isinstance(request, list) or len(request) > SCHEDULE_MAX:
        raise Refused(-985)
    entries: list[Json] = []
    for raw in request:
        if not isinstance(raw, Mapping) or raw.get("name") not in SCHEDULE_NAMES:
            raise Refused(-985)
        when, repeat = number(raw.get("when")), number(raw.get("repeat", 0))
        if when is None or when <= 0 or repeat is None or not 0 <= repeat <= 366 * 86_400:
            raise Refused(-985)
        if repeat == 0 and when <= now:
            raise Refused(-985)  # a one-off entry in the past would never run
        if when > now + SCHEDULE_AHEAD_S:
            raise Refused(-985)  # not unix seconds (milliseconds reach the year 58,000)
        entry: dict[str, Json] = {"name": raw["name"], "when": when, "repeat": repeat}
        if raw["name"] == "limit_power":
            power, time = number(raw.get("power")), number(raw.get("time"))
            if power is None or time is None or power < 0 or not 0 < time <= SCHEDULE_AHEAD_S:
                raise Refused(-986)
            entry.update(power=power, time=time)
        entries.append(entry)
    return entries, [117] * len(entries) if entries else [119]
