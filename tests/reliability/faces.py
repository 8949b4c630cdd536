"""Every face's endpoints as data: a valid request, its fields' kinds, its error shape.

The fuzzer turns each valid request into invalid ones (one bad field, a missing field,
a malformed or oversized body, a wrong top-level type, no credential); the isolation
matrix sends the other account's credential at the first account's resources. A new
dialect plugs in by adding its endpoints here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from hypothesis import strategies as st

from switchgear.dialects.powercontroller.countries import COUNTRIES
from switchgear.errors import InvalidInput
from switchgear.storage.cursor import decode
from tests.reliability.conftest import Estate

Headers = dict[str, str]


# --- error shapes ---------------------------------------------------------------------


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def problem(r: httpx.Response) -> bool:
    body = _json(r)
    return (
        r.headers.get("content-type", "").startswith("application/problem+json")
        and isinstance(body, dict)
        and {"type", "title", "status", "detail"} <= set(body)
        and body["status"] == r.status_code
    )


def gateway_error(r: httpx.Response) -> bool:
    body = _json(r)
    return isinstance(body, dict) and set(body) == {"statusCode", "message"}


def message(r: httpx.Response) -> bool:
    body = _json(r)
    return isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]


def error(r: httpx.Response) -> bool:
    body = _json(r)
    return isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]


SHAPES: dict[str, Callable[[httpx.Response], bool]] = {
    "native": problem,
    "smartplug": problem,
    "multisocket": gateway_error,
    "powercontroller": message,
    "push3": error,
    "meterhttp": error,
}


# --- invalid values by kind -----------------------------------------------------------

_HUGE = st.one_of(st.integers(min_value=10**15), st.integers(max_value=-(10**15)))
_NOT_TEXT = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                      allow_infinity=False), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))  # fmt: skip
_NOT_NUMBER = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.lists(st.integers(),
                        max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                        max_size=2))  # fmt: skip


def not_in(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Anything but one of `values` (texts, unicode included, and other types)."""
    return st.one_of(st.text(max_size=40).filter(lambda s: s not in values), _NOT_TEXT)


def seconds(
    lo: float = 0, hi: float = 31_536_000, *, open_lo: bool = False
) -> st.SearchStrategy[Any]:
    """Numbers outside [lo, hi] (or <= lo when open), and non-numbers."""
    below = st.floats(max_value=lo, allow_nan=False, allow_infinity=False)
    if not open_lo:
        below = below.filter(lambda x: x < lo)
    above = st.floats(min_value=hi, allow_nan=False, allow_infinity=False).filter(lambda x: x > hi)
    return st.one_of(below, above, _HUGE, _NOT_NUMBER)


def not_matching(
    pattern: str, also: Callable[[str], bool] = lambda s: False
) -> st.SearchStrategy[Any]:
    rx = re.compile(pattern)
    return st.one_of(
        st.text(max_size=40).filter(lambda s: not rx.fullmatch(s) and not also(s)), _NOT_TEXT
    )


def bad_int_text(lo: int, hi: int) -> st.SearchStrategy[str]:
    """Query-string values that are not a whole number in [lo, hi]."""

    def valid(s: str) -> bool:
        try:
            return lo <= int(s) <= hi
        except ValueError:
            return False

    return st.text(max_size=12).filter(lambda s: not valid(s))


def not_iso_date() -> st.SearchStrategy[str]:
    def parses(s: str) -> bool:
        try:
            datetime.fromisoformat(s.strip().replace("z", "Z"))
        except ValueError:
            return False
        return True

    return st.text(min_size=1, max_size=30).filter(lambda s: not parses(s))


def bad_status_list() -> st.SearchStrategy[Any]:
    """Not a list of one or three booleans (the outlets matched by type)."""
    bools = st.lists(st.booleans())
    return st.one_of(
        _NOT_NUMBER.filter(lambda v: not isinstance(v, list)),
        bools.filter(lambda v: len(v) not in (1, 3)),
        st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), min_size=1),
    )


# --- endpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One route: how to call it validly for account A, and how each field can go wrong."""

    face: str
    name: str
    method: str
    path: Callable[[Estate], str]
    headers: Callable[[Estate], Headers]
    body: Callable[[Estate], dict[str, Any]] | None = None
    fields: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)  # dotted paths
    query: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)  # bad query values
    form: bool = False
    # client text that reaches the store (dotted body fields; `?name` a query parameter):
    # a NUL in it is refused (PostgreSQL keeps none in text), or, in a secret, just wrong
    texts: tuple[str, ...] = ()

    def url(self, e: Estate, query: dict[str, str] | None = None) -> str:
        path = self.path(e)
        if query:
            sep = "&" if "?" in path else "?"
            path += sep + str(httpx.QueryParams(query))
        return path


def native(e: Estate) -> Headers:
    return {"Authorization": f"Bearer {e.creds['account']['token']}"}


def plug_id(e: Estate) -> int:
    return next(d.id for d in e.rt.engine.devices(1) if d.model == "SHPLG-1")


def sp(e: Estate) -> Headers:
    return {"Authorization": f"Bearer {e.section('smartplug')['access_token']}"}


def ms(e: Estate) -> Headers:
    s = e.section("multisocket")
    return {"Ocp-Apim-Subscription-Key": s["subscription_key"], "Authorization": s["id_token"]}


def pc(e: Estate) -> Headers:
    return {"Authorization": f"Bearer {e.section('powercontroller')['token']}"}


def pc_device(e: Estate) -> str:
    return str(e.section("powercontroller")["device_ids"][0])


def p3(e: Estate) -> Headers:
    return {"Authorization": f"Bearer {e.section('push3')['key']}"}


def meter(e: Estate) -> dict[str, Any]:
    return dict(next(m for m in e.section("meterhttp")["meters"] if m["phases"] == 3))


def _bad_cursor(text: str) -> bool:
    try:
        decode(text)
    except InvalidInput:
        return True
    return False


PLANT = "/multioutlet/plug/energy/addressLocation/plants/{}/parameter/type/value/outlet"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("native", "switch", "POST",
             lambda e: f"/api/v1/devices/{plug_id(e)}/channels/0/switch", native,
             lambda e: {"action": "on", "delay": 0},
             {"action": not_in(("on", "off", "toggle")), "delay": seconds()}),
    Endpoint("native", "settings", "PATCH", lambda e: f"/api/v1/devices/{plug_id(e)}/settings",
             native, lambda e: {"auto_off_s": 10, "power_on": "last"},
             {"auto_off_s": seconds().filter(lambda v: v is not None),
              "power_on": not_in(("on", "off", "last")).filter(lambda v: v is not None)}),
    Endpoint("native", "tokens", "POST", lambda e: "/api/v1/tokens", native,
             lambda e: {"desc": "fuzz", "expires_in": 60},
             {"expires_in": seconds(0, 315_360_000, open_lo=True),
              "desc": st.one_of(st.text(min_size=201, max_size=300), _NOT_TEXT)},
             texts=("desc",)),
    Endpoint("native", "credentials", "POST", lambda e: "/api/v1/credentials", native,
             lambda e: {"kind": "smartplug.client"},
             {"kind": not_in(("smartplug.client", "multisocket.key", "multisocket.id_token",
                              "powercontroller.token", "push3.key", "push3.gateway_key"))},
             texts=("desc",)),
    Endpoint("native", "meters", "POST", lambda e: "/api/v1/meters", native,
             lambda e: {"url": "http://192.0.2.1", "devid": "1234567890", "devpass": "123456"},
             {"devid": not_matching(r"\d{10}"), "devpass": not_matching(r"\d{6}")},
             texts=("name", "devpass")),
    Endpoint("native", "grid", "PUT", lambda e: "/api/v1/sim/grid", native,
             lambda e: {"frequency_hz": 60.0},
             {"frequency_hz": seconds(40, 70)}),
    Endpoint("native", "advance", "POST", lambda e: "/api/v1/sim/clock/advance", native,
             lambda e: {"seconds": 1}, {"seconds": seconds(0, 315_360_000, open_lo=True)}),
    Endpoint("native", "history", "GET", lambda e: f"/api/v1/devices/{plug_id(e)}/history",
             native, query={"cursor": st.text(min_size=1, max_size=30).filter(_bad_cursor),
                            "limit": bad_int_text(1, 5000)}),
    Endpoint("smartplug", "fetch", "POST", lambda e: "/provider/fetch", sp,
             lambda e: {"serial_number": e.section("smartplug")["serials"][0]},
             {"serial_number": not_in(tuple(e for e in ()))}),
    Endpoint("smartplug", "send", "POST", lambda e: "/provider/send", sp,
             lambda e: {"serial_number": e.section("smartplug")["serials"][0],
                        "command": "switch_on_off", "state": "on"},
             {"command": not_in(("switch_on_off", "default_switch", "max_power_turn_off",
                                 "auto_switch")), "state": not_in(("on", "off"))}),
    Endpoint("smartplug", "controllers", "GET", lambda e: "/v1/controllers", sp,
             query={"page": bad_int_text(1, 10**12)}),
    Endpoint("multisocket", "set", "POST",
             lambda e: PLANT.format(e.section("multisocket")["plant_id"]), ms,
             lambda e: {"status": [True]}, {"status": bad_status_list()}),
    Endpoint("powercontroller", "command", "POST",
             lambda e: f"/v1/devices/{pc_device(e)}/command", pc,
             lambda e: {"command": {"name": "on", "delay": 60}},
             {"command.name": not_in(("on", "off", "on_for", "off_for", "on_at", "off_at",
                                      "limit_power", "reset")),
              "command.delay": seconds(0, 366 * 86_400)}),
    Endpoint("powercontroller", "configure", "PUT", lambda e: f"/v1/devices/{pc_device(e)}",
             pc, lambda e: {"info": {"samplePeriod": 900, "ffr": {"periods": 10}}},
             {"info.samplePeriod": seconds(60, 86_400),
              "info.ffr.periods": seconds(1, 30)}),
    Endpoint("powercontroller", "add", "POST", lambda e: "/v1/devices", pc,
             lambda e: {"sn": "PC-FUZZFUZZFUZZ-001", "country": "US"},
             {"sn": not_matching(r"PC-[A-Z0-9]{6,20}-\d{3}"),
              "country": not_in(tuple(COUNTRIES) + tuple(c.lower() for c in COUNTRIES))}),
    Endpoint("powercontroller", "signin", "POST", lambda e: "/v1/signin", lambda e: {},
             lambda e: {"user": {"email": e.creds["account"]["email"],
                                 "password": e.creds["account"]["password"]}, "expires": 60},
             {"expires": seconds(1, 315_360_000).filter(
                 lambda v: v is not None and v != "" and not (isinstance(v, str) and v.isascii()
                                                               and v.isdigit()))},
             texts=("desc", "user.email", "user.password")),
    Endpoint("powercontroller", "statuses", "GET", lambda e: "/v1/statuses", pc,
             query={"date": not_iso_date(), "date[start]": not_iso_date(),
                    "limit": bad_int_text(1, 10_000)}),
    Endpoint("push3", "sendCommand", "POST", lambda e: "/sendCommand", p3,
             lambda e: {"command": "SetRelay", "target": "meter",
                        "target_id": e.section("push3")["meters"][0],
                        "params": {"relay": "Relay_1", "status": "close"}},
             {"command": not_in(("SetMeterPassword", "SetCTRatio", "SetTime",
                                 "SetMaxDemandResetInterval", "SetMaxDemandResetNow",
                                 "SetMaxDemandPeriod", "SetLCD", "SetPulseInputRatio",
                                 "SetPulseOutputRatio", "SetZeroResettableKWH", "SetRelay",
                                 "SetHolidayDates", "SetSchedule", "SetWeekendHolidaySchedules",
                                 "GetSchedules", "GetTariffData")),
              "target": not_in(("meter", "gateway")),
              "target_id": not_in(()),
              "params": _NOT_NUMBER.filter(lambda v: not isinstance(v, dict) and v is not None)},
             texts=("client", "params.meter_password")),
    Endpoint("meterhttp", "getdata", "GET",
             lambda e: "/?page=getdata&devid={devid}&devpass={devpass}".format(**meter(e)),
             lambda e: {}, query={"pout": st.text(max_size=8).filter(lambda v: v not in "01")},
             texts=("?devid", "?devpass")),
)  # fmt: skip


def finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
