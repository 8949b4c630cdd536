"""The EKM Omnimeter v4 twin: three metered lines, two relays, and every Push3 setting.

Commands arrive from its Push3 gateway as FirmwareCommand("ekm.<Command>", params). Each
is validated with the constants in devices/ekm.py before anything changes; a bad value
raises InvalidCommand with a clear message (the gateway answers `success: false`).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from switchgear.core.model import CommandResult, FirmwareCommand, Json, StatusKind
from switchgear.devices import ekm
from switchgear.devices.meter import MeterTwin
from switchgear.errors import InvalidCommand

_PRINTABLE = re.compile(r"^[\x21-\x7e]{8}$")
# Commands that change the meter: they need its password (`meter_password`, default 00000000)
READS = ("GetSchedules", "GetTariffData")


def _int(params: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    """An integer parameter (JSON number or digit string) within [lo, hi]."""
    value = params.get(name)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidCommand(f"{name} must be a whole number", field=name)
    if not lo <= value <= hi:
        raise InvalidCommand(f"{name} must be {lo}-{hi}, got {int(value)}", field=name)
    return int(value)


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[int, ...]) -> int:
    value = params.get(name)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise InvalidCommand(f"{name} must be one of {shown}", field=name)
    return int(value)


class OmnimeterTwin(MeterTwin):
    """Omnimeter Pulse v.4: relay 1 switches line 1's load, relay 2 line 2's."""

    def setup(self) -> None:
        self.ekm: dict[str, Any] = {
            "password": self.device.attrs.get("meter_password", ekm.DEFAULT_PASSWORD),
            "ct_ratio": 200,
            "time_offset_s": 0.0,
            "max_demand_period": 1,
            "max_demand_reset_interval": 0,
            "max_demand_w": 0.0,
            "max_demand_at": self.clock.now(),
            "lcd": list(ekm.DEFAULT_LCD),
            "pulse_input_ratio": [1, 1, 1],
            "pulse_output_ratio": [1, 1, 1],
            "kwh_rst_base": [0.0, 0.0],
            "holidays": [],
            "schedules": [[] for _ in range(ekm.SCHEDULES)],
            "weekend_schedule": 1,
            "holiday_schedule": 1,
            "tariff_wh": [[0.0, 0.0] for _ in range(ekm.TARIFFS)],
            "tariff_mark": None,  # (t, import_wh, export_wh) attributed so far
        }

    # --- the meter's clock and registers ------------------------------------------------

    def meter_time(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now() + self.ekm["time_offset_s"], UTC)

    def registers(self) -> tuple[float, float]:
        now = self.clock.now()
        for p in self.points:
            p.load.advance(now)
        energies = [p.energy() for p in self.points]
        return sum(e[0] for e in energies), sum(e[1] for e in energies)

    def tariff_now(self) -> int:
        """The tariff (1-4) the time-of-use schedule gives the meter's time now."""
        t = self.meter_time()
        holiday = {"month": t.month, "day": t.day} in self.ekm["holidays"]
        if holiday:
            schedule = self.ekm["holiday_schedule"]
        elif t.weekday() >= 5:
            schedule = self.ekm["weekend_schedule"]
        else:
            schedule = 1
        periods = sorted(
            self.ekm["schedules"][schedule - 1], key=lambda p: (p["hour"], p["minute"])
        )
        if not periods:
            return 1
        minute = t.hour * 60 + t.minute
        current = periods[-1]  # before the first start: the last period of the day before
        for p in periods:
            if p["hour"] * 60 + p["minute"] <= minute:
                current = p
        return int(current["tariff"])

    def _attribute(self) -> None:
        """Book the energy since the last mark to the tariff in force."""
        imp, exp = self.registers()
        mark = self.ekm["tariff_mark"]
        if mark is not None:
            slot = self.ekm["tariff_wh"][self.tariff_now() - 1]
            slot[0] += max(imp - mark[1], 0.0)
            slot[1] += max(exp - mark[2], 0.0)
        self.ekm["tariff_mark"] = [self.clock.now(), imp, exp]

    def update(self, reason: str) -> None:
        self._attribute()
        self._max_demand()
        super().update(reason)

    def _max_demand(self) -> None:
        """Track the highest average power over a demand period (checked each sample)."""
        t0, e0 = self._last_update
        now = self.clock.now()
        interval = self.ekm["max_demand_reset_interval"]
        if interval and _boundary_passed(self.ekm["max_demand_at"], now, interval):
            self.ekm["max_demand_w"] = 0.0
            self.ekm["max_demand_at"] = now
        if now > t0:
            avg = (self.energy_wh() - e0) * 3600 / (now - t0)
            if avg > self.ekm["max_demand_w"]:
                self.ekm["max_demand_w"] = avg

    def extra(self) -> dict[str, Json]:
        settings = {k: copy.deepcopy(v) for k, v in self.ekm.items() if k != "password"}
        on = [c.on for c in self.channels]
        return {"ekm": settings, "state_out": ekm.state_out(on[0], on[1])}

    # --- NVRAM ----------------------------------------------------------------------------

    def nvram(self) -> dict[str, Json]:
        return {**super().nvram(), "ekm": copy.deepcopy(self.ekm)}

    def restore(self, blob: dict[str, Any]) -> None:
        super().restore(blob)
        if isinstance(blob.get("ekm"), dict):
            self.ekm.update(blob["ekm"])

    # --- commands ---------------------------------------------------------------------------

    def firmware(self, cmd: FirmwareCommand) -> CommandResult:
        name = cmd.name.removeprefix("ekm.")
        handler = self._handlers().get(name)
        if not cmd.name.startswith("ekm.") or handler is None:
            raise InvalidCommand(f"unknown meter command {name!r}", field="command")
        params = cmd.params if isinstance(cmd.params, Mapping) else {}
        if name not in READS:
            given = params.get("meter_password", ekm.DEFAULT_PASSWORD)
            if not isinstance(given, str) or len(given) != ekm.PASSWORD_LENGTH:
                raise InvalidCommand("meter_password must be 8 characters", field="meter_password")
            if given != self.ekm["password"]:
                raise InvalidCommand("meter password rejected", field="meter_password")
        self._attribute()  # settings that move tariffs apply from now on
        data = handler(params)
        if name not in READS:
            self.emit(StatusKind.FUNCTION, "ekm", {"command": name, "success": True})
        self.save()
        return CommandResult(ok=True, data={"data": data})

    def _handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Json]]:
        return {
            "SetMeterPassword": self._set_password,
            "SetCTRatio": self._set_ct_ratio,
            "SetTime": self._set_time,
            "SetMaxDemandResetInterval": self._set_reset_interval,
            "SetMaxDemandResetNow": self._reset_max_demand,
            "SetMaxDemandPeriod": self._set_demand_period,
            "SetLCD": self._set_lcd,
            "SetPulseInputRatio": self._set_pulse_input,
            "SetPulseOutputRatio": self._set_pulse_output,
            "SetZeroResettableKWH": self._zero_kwh,
            "SetRelay": self._set_relay,
            "SetHolidayDates": self._set_holidays,
            "SetSchedule": self._set_schedule,
            "SetWeekendHolidaySchedules": self._set_weekend_holiday,
            "GetSchedules": self._get_schedules,
            "GetTariffData": self._get_tariffs,
        }

    def _set_password(self, p: Mapping[str, Any]) -> Json:
        new = p.get("new_password")
        if not isinstance(new, str) or not _PRINTABLE.match(new):
            raise InvalidCommand("new_password must be exactly 8 characters", field="new_password")
        self.ekm["password"] = new
        return None

    def _set_ct_ratio(self, p: Mapping[str, Any]) -> Json:
        self.ekm["ct_ratio"] = _choice(p, "ct_ratio", ekm.CT_RATIOS)
        return None

    def _set_time(self, p: Mapping[str, Any]) -> Json:
        fields = ("year", "month", "day", "hour", "minutes", "seconds")
        widths = (4, 2, 2, 2, 2, 2)
        values = []
        for name, width in zip(fields, widths, strict=True):
            raw = p.get(name)
            if isinstance(raw, int) and not isinstance(raw, bool):
                raw = str(raw).zfill(width)
            if not isinstance(raw, str) or not re.fullmatch(rf"\d{{{width}}}", raw):
                raise InvalidCommand(f"{name} must be a {width}-digit string", field=name)
            values.append(int(raw))
        if not 2000 <= values[0] <= 2099:
            raise InvalidCommand("year must be 2000-2099", field="year")
        try:
            year, month, day, hour, minute, second = values
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as err:
            raise InvalidCommand(f"not a valid date and time: {err}", field="day") from None
        self.ekm["time_offset_s"] = when.timestamp() - self.clock.now()
        return None

    def _set_reset_interval(self, p: Mapping[str, Any]) -> Json:
        self.ekm["max_demand_reset_interval"] = _choice(
            p, "interval", tuple(ekm.MAX_DEMAND_RESET_INTERVALS)
        )
        return None

    def _reset_max_demand(self, p: Mapping[str, Any]) -> Json:
        self.ekm["max_demand_w"] = 0.0
        self.ekm["max_demand_at"] = self.clock.now()
        return None

    def _set_demand_period(self, p: Mapping[str, Any]) -> Json:
        self.ekm["max_demand_period"] = _choice(
            p, "max_demand_period", tuple(ekm.MAX_DEMAND_PERIODS)
        )
        return None

    def _set_lcd(self, p: Mapping[str, Any]) -> Json:
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
            elif isinstance(f, str) and f.isdigit() and int(f) in ekm.LCD_NUMBERS:
                items.append(int(f))
            elif isinstance(f, int) and not isinstance(f, bool) and f in ekm.LCD_NUMBERS:
                items.append(f)
            else:
                raise InvalidCommand(f"unknown display field {f!r}", field="display_fields")
        self.ekm["lcd"] = items
        return None

    def _set_pulse_input(self, p: Mapping[str, Any]) -> Json:
        line = _int(p, "pulse_line", 1, len(ekm.PULSE_LINES))
        ratio = _int(p, "pulse_input_ratio", 0, ekm.PULSE_INPUT_RATIO_MAX)
        self.ekm["pulse_input_ratio"][line - 1] = ratio
        return None

    def _set_pulse_output(self, p: Mapping[str, Any]) -> Json:
        line = _int(p, "pulse_line", 1, len(ekm.PULSE_LINES)) if "pulse_line" in p else 1
        ratio = _choice(p, "pulse_output_ratio", ekm.PULSE_OUTPUT_RATIOS)
        self.ekm["pulse_output_ratio"][line - 1] = ratio
        return None

    def _zero_kwh(self, p: Mapping[str, Any]) -> Json:
        self.ekm["kwh_rst_base"] = list(self.registers())
        return None

    def _set_relay(self, p: Mapping[str, Any]) -> Json:
        relay = p.get("relay")
        index = ekm.RELAYS.get(relay.lower()) if isinstance(relay, str) else None
        if index is None:
            raise InvalidCommand("relay must be Relay_1 or Relay_2", field="relay")
        status = p.get("status")
        on = ekm.RELAY_STATUS.get(status.lower()) if isinstance(status, str) else None
        if on is None:
            raise InvalidCommand("status must be open or close", field="status")
        duration = _int(p, "duration", 0, ekm.RELAY_DURATION_MAX_S) if "duration" in p else 0
        self.set_relay(self.channels[index], on, "api", then_for=duration or None)
        return None

    def _set_holidays(self, p: Mapping[str, Any]) -> Json:
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
            month, day = _int(d, "month", 1, 12), _int(d, "day", 1, 31)
            try:
                datetime(2024, month, day)  # a leap year: 29 February is a date
            except ValueError:
                raise InvalidCommand(f"no day {day} in month {month}", field="holidays") from None
            out.append({"month": month, "day": day})
        self.ekm["holidays"] = out
        return None

    def _set_schedule(self, p: Mapping[str, Any]) -> Json:
        number = _int(p, "schedule", 1, ekm.SCHEDULES)
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
            hour, minute = _int(period, "hour", 0, 23), _int(period, "minute", 0, 59)
            out.append({"hour": hour, "minute": minute,
                        "tariff": _int(period, "tariff", 1, ekm.TARIFFS)})  # fmt: skip
        self.ekm["schedules"][number - 1] = out
        return None

    def _set_weekend_holiday(self, p: Mapping[str, Any]) -> Json:
        weekend = _int(p, "weekend_schedule", 1, ekm.SCHEDULES)
        holiday = _int(p, "holiday_schedule", 1, ekm.SCHEDULES)
        self.ekm["weekend_schedule"], self.ekm["holiday_schedule"] = weekend, holiday
        return None

    def _get_schedules(self, p: Mapping[str, Any]) -> Json:
        return {
            "schedules": [
                {"schedule": i + 1, "periods": copy.deepcopy(s)}
                for i, s in enumerate(self.ekm["schedules"])
            ],
            "weekend_schedule": self.ekm["weekend_schedule"],
            "holiday_schedule": self.ekm["holiday_schedule"],
            "holidays": copy.deepcopy(self.ekm["holidays"]),
        }

    def _get_tariffs(self, p: Mapping[str, Any]) -> Json:
        imp, exp = self.registers()
        base = self.ekm["kwh_rst_base"]
        return {
            "current_tariff": self.tariff_now(),
            "tariffs": [
                {"tariff": i + 1, "kWh": round(w[0] / 1000, 3), "rev_kWh": round(w[1] / 1000, 3)}
                for i, w in enumerate(self.ekm["tariff_wh"])
            ],
            "kWh_Tot": round(imp / 1000, 3),
            "Rev_kWh_Tot": round(exp / 1000, 3),
            "kWh_Rst": round((imp - base[0]) / 1000, 3),
            "Rev_kWh_Rst": round((exp - base[1]) / 1000, 3),
            "Max_Demand": round(self.ekm["max_demand_w"], 1),
            "meter_time": self.meter_time().strftime("%Y-%m-%d %H:%M:%S"),
        }


def _boundary_passed(since: float, now: float, interval: int) -> bool:
    """Whether a monthly/weekly/daily/hourly boundary lies in (since, now]."""
    a, b = datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(now, UTC)
    if interval == 1:
        return (a.year, a.month) != (b.year, b.month)
    if interval == 2:
        return (a - timedelta(days=a.weekday())).date() != (b - timedelta(days=b.weekday())).date()
    if interval == 3:
        return a.date() != b.date()
    return math.floor(since / 3600) != math.floor(now / 3600)
