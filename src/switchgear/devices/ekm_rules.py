"""The Omnimeter's parameter rules: each Push3 command's params checked and normalised.

Pure functions of the params (no meter state), so the Push3 API checks a command before
it answers and the meter checks it again before anything changes. A bad value raises
InvalidCommand naming the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from switchgear.devices import ekm
from switchgear.errors import InvalidCommand
from switchgear.storedtext import NUL, REFUSED

Params = Mapping[str, Any]
_PRINTABLE = re.compile(r"^[\x21-\x7e]{8}$")
# Commands that only read the meter: they need no password
READS = ("GetSchedules", "GetTariffData")


def _number(value: Any) -> Any:
    """A digit string as its integer (ASCII digits: int() would also read other scripts');
    anything else as given."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,9}\s*", value):
        return int(value)
    return value


def whole(params: Params, name: str, lo: int, hi: int) -> int:
    """An integer parameter (JSON number or digit string) within [lo, hi]."""
    value = _number(params.get(name))
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise InvalidCommand(f"{name} must be a whole number", field=name)
    if not lo <= value <= hi:
        raise InvalidCommand(f"{name} must be {lo}-{hi}, got {int(value)}", field=name)
    return int(value)


def choice(params: Params, name: str, allowed: tuple[int, ...]) -> int:
    """An integer parameter that must be one of `allowed`."""
    value = _number(params.get(name))
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise InvalidCommand(f"{name} must be one of {shown}", field=name)
    return value


def password(params: Params) -> str:
    """The `meter_password` a changing command carries (default 00000000)."""
    given = params.get("meter_password", ekm.DEFAULT_PASSWORD)
    if not isinstance(given, str) or len(given) != ekm.PASSWORD_LENGTH:
        raise InvalidCommand("meter_password must be 8 characters", field="meter_password")
    if NUL in given:  # never a meter's (SetMeterPassword sets printable ones): a clear 400
        raise InvalidCommand(f"meter_password {REFUSED}", field="meter_password")
    return given


def _new_password(p: Params) -> dict[str, Any]:
    new = p.get("new_password")
    if not isinstance(new, str) or not _PRINTABLE.match(new):
        raise InvalidCommand("new_password must be exactly 8 characters", field="new_password")
    return {"new_password": new}


def _time(p: Params) -> dict[str, Any]:
    fields = ("year", "month", "day", "hour", "minutes", "seconds")
    widths = (4, 2, 2, 2, 2, 2)
    values = []
    for name, width in zip(fields, widths, strict=True):
        raw = p.get(name)
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        # The document shows "MM" and the like; "3" is as clear as "03", so both are taken.
        # The year stays "YYYY": every year in range has four digits, and "30" is ambiguous.
        # ASCII digits only: `\d` would also take other scripts' digits.
        fewest = width if name == "year" else 1
        if not isinstance(raw, str) or not re.fullmatch(rf"[0-9]{{{fewest},{width}}}", raw):
            shape = f"{width}-digit string" if fewest == width else f"string of 1-{width} digits"
            raise InvalidCommand(f"{name} must be a {shape}", field=name)
        values.append(int(raw))
    if not 2000 <= values[0] <= 2099:
        raise InvalidCommand("year must be 2000-2099", field="year")
    try:
        year, month, day, hour, minute, second = values
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as err:
        raise InvalidCommand(f"not a valid date and time: {err}", field="day") from None
    return {"when": when.timestamp()}


def _lcd(p: Params) -> dict[str, Any]:
    fields = p.get("display_fields")
    if not isinstance(fields, list) or not 1 <= len(fields) <= ekm.LCD_ITEMS_MAX:
        raise InvalidCommand(
            f"display_fields must be a list of 1-{ekm.LCD_ITEMS_MAX} items",
            field="display_fields",
        )
    items = []
    for f in fields:
        if isinstance(f, str) and f in ekm.LCD_FIELDS:
            items.append(ekm.LCD_FIELDS[f])
        elif isinstance(f, str) and f.isascii() and f.isdigit() and int(f) in ekm.LCD_NUMBERS:
            items.append(int(f))
        elif isinstance(f, int) and not isinstance(f, bool) and f in ekm.LCD_NUMBERS:
            items.append(f)
        else:
            raise InvalidCommand(f"unknown display field {f!r}", field="display_fields")
    return {"lcd": items}


def _pulse_input(p: Params) -> dict[str, Any]:
    return {
        "line": whole(p, "pulse_line", 1, len(ekm.PULSE_LINES)),
        "ratio": whole(p, "pulse_input_ratio", 0, ekm.PULSE_INPUT_RATIO_MAX),
    }


def _pulse_output(p: Params) -> dict[str, Any]:
    line = whole(p, "pulse_line", 1, len(ekm.PULSE_LINES)) if "pulse_line" in p else 1
    return {"line": line, "ratio": choice(p, "pulse_output_ratio", ekm.PULSE_OUTPUT_RATIOS)}


def _relay(p: Params) -> dict[str, Any]:
    relay = p.get("relay")
    index = ekm.RELAYS.get(relay.lower()) if isinstance(relay, str) else None
    if index is None:
        raise InvalidCommand("relay must be Relay_1 or Relay_2", field="relay")
    status = p.get("status")
    on = ekm.RELAY_STATUS.get(status.lower()) if isinstance(status, str) else None
    if on is None:
        raise InvalidCommand("status must be open or close", field="status")
    duration = whole(p, "duration", 0, ekm.RELAY_DURATION_MAX_S) if "duration" in p else 0
    return {"index": index, "on": on, "duration": duration}


def _holidays(p: Params) -> dict[str, Any]:
    dates = p.get("holidays")
    if not isinstance(dates, list) or len(dates) > ekm.HOLIDAYS_MAX:
        raise InvalidCommand(
            f"holidays must be a list of at most {ekm.HOLIDAYS_MAX} "
            '{"month": 1-12, "day": 1-31} dates',
            field="holidays",
        )
    out = []
    for d in dates:
        if not isinstance(d, Mapping):
            raise InvalidCommand("each holiday is {month, day}", field="holidays")
        month, day = whole(d, "month", 1, 12), whole(d, "day", 1, 31)
        try:
            datetime(2024, month, day)  # a leap year: 29 February is a date
        except ValueError:
            raise InvalidCommand(f"no day {day} in month {month}", field="holidays") from None
        out.append({"month": month, "day": day})
    return {"holidays": out}


def _schedule(p: Params) -> dict[str, Any]:
    number = whole(p, "schedule", 1, ekm.SCHEDULES)
    periods = p.get("periods")
    if not isinstance(periods, list) or len(periods) > ekm.PERIODS_PER_SCHEDULE:
        raise InvalidCommand(
            f"periods must be a list of at most {ekm.PERIODS_PER_SCHEDULE} "
            "{hour, minute, tariff} entries",
            field="periods",
        )
    out = []
    for period in periods:
        if not isinstance(period, Mapping):
            raise InvalidCommand("each period is {hour, minute, tariff}", field="periods")
        hour, minute = whole(period, "hour", 0, 23), whole(period, "minute", 0, 59)
        out.append({"hour": hour, "minute": minute,
                    "tariff": whole(period, "tariff", 1, ekm.TARIFFS)})  # fmt: skip
    return {"schedule": number, "periods": out}


def _none(p: Params) -> dict[str, Any]:
    return {}


RULES: dict[str, Callable[[Params], dict[str, Any]]] = {
    "SetMeterPassword": _new_password,
    "SetCTRatio": lambda p: {"ct_ratio": choice(p, "ct_ratio", ekm.CT_RATIOS)},
    "SetTime": _time,
    "SetMaxDemandResetInterval": lambda p: {
        "interval": choice(p, "interval", tuple(ekm.MAX_DEMAND_RESET_INTERVALS))
    },
    "SetMaxDemandResetNow": _none,
    "SetMaxDemandPeriod": lambda p: {
        "period": choice(p, "max_demand_period", tuple(ekm.MAX_DEMAND_PERIODS))
    },
    "SetLCD": _lcd,
    "SetPulseInputRatio": _pulse_input,
    "SetPulseOutputRatio": _pulse_output,
    "SetZeroResettableKWH": _none,
    "SetRelay": _relay,
    "SetHolidayDates": _holidays,
    "SetSchedule": _schedule,
    "SetWeekendHolidaySchedules": lambda p: {
        "weekend": whole(p, "weekend_schedule", 1, ekm.SCHEDULES),
        "holiday": whole(p, "holiday_schedule", 1, ekm.SCHEDULES),
    },
    "GetSchedules": _none,
    "GetTariffData": _none,
}
COMMANDS = tuple(RULES)


def check(command: str, params: Params) -> dict[str, Any]:
    """The command's parameters, checked and normalised (the meter password's form too)."""
    rule = RULES.get(command)
    if rule is None:
        raise InvalidCommand(f"unknown meter command {command!r}", field="command")
    if command not in READS:
        password(params)
    return rule(params)
