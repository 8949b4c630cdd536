"""The EKM Omnimeter v4 twin: three metered lines, two relays, and every Push3 setting.

Commands arrive from its Push3 gateway as FirmwareCommand("ekm.<Command>", params). Each
is checked by devices/ekm_rules.py before anything changes; a bad value raises
InvalidCommand with a clear message (the gateway answers `success: false`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from switchgear.core.model import CommandResult, FirmwareCommand, Json, StatusKind
from switchgear.core.scheduler import Timer
from switchgear.devices import ekm
from switchgear.devices import ekm_rules as rules
from switchgear.devices.meter import MeterTwin
from switchgear.errors import InvalidCommand


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
            "tariff_wh": [[0.0, 0.0] for _ in range(ekm.TARIFFS)],  # [import, export] each
            "demand_block": None,  # [start, import_wh]: the demand interval in progress
        }
        self._demand: Timer | None = None

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
        """Book the energy not yet booked to the tariff in force: the tariff registers
        always add up to the totals."""
        imp, exp = self.registers()
        booked = self.ekm["tariff_wh"]
        slot = booked[self.tariff_now() - 1]
        slot[0] += max(imp - sum(b[0] for b in booked), 0.0)
        slot[1] += max(exp - sum(b[1] for b in booked), 0.0)

    def update(self, reason: str) -> None:
        self._attribute()
        super().update(reason)

    # --- max demand: the highest average power over a demand interval ---------------------

    def _period_s(self) -> float:
        return ekm.MAX_DEMAND_PERIODS[self.ekm["max_demand_period"]] * 60.0

    def _arm_demand(self, restart: bool) -> None:
        """Time the demand interval in progress; `restart` begins a new one now."""
        if self._demand is not None:
            self._demand.cancel()
        now, period = self.clock.now(), self._period_s()
        block = self.ekm["demand_block"]
        if restart or block is None or now >= self._block_end(block[0], period):
            block = self.ekm["demand_block"] = [now, self.energy_wh()]  # a partial one
        self._demand = self.scheduler.call_at(self._block_end(block[0], period), self._on_block)

    def _block_end(self, start: float, period: float) -> float:
        """Intervals end on the meter clock's quarter, half or whole hours."""
        offset = self.ekm["time_offset_s"]
        return float((math.floor((start + offset) / period + 1e-9) + 1) * period - offset)

    def _on_block(self, _: object = None) -> None:
        self._demand = None
        now, (start, e0) = self.clock.now(), self.ekm["demand_block"]
        interval = self.ekm["max_demand_reset_interval"]
        if interval and _boundary_passed(self.ekm["max_demand_at"], now, interval):
            self.ekm["max_demand_w"] = 0.0
            self.ekm["max_demand_at"] = now
        period = self._period_s()
        if now - start >= period - 1e-6:  # only whole intervals count
            avg = (self.energy_wh() - e0) * 3600 / period
            self.ekm["max_demand_w"] = max(self.ekm["max_demand_w"], avg)
        self.ekm["demand_block"] = [now, self.energy_wh()]
        self._demand = self.scheduler.call_at(now + period, self._on_block)
        self.save()

    def boot(self) -> None:
        super().boot()
        self._arm_demand(restart=False)  # an interval cut by a power loss starts over

    def shutdown(self) -> None:
        super().shutdown()
        if self._demand is not None:
            self._demand.cancel()
            self._demand = None

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
            self.ekm.pop("tariff_mark", None)  # older NVRAM; the registers now add up by rule

    # --- commands ---------------------------------------------------------------------------

    def firmware(self, cmd: FirmwareCommand) -> CommandResult:
        name = cmd.name.removeprefix("ekm.")
        handler = self._handlers().get(name)
        if not cmd.name.startswith("ekm.") or handler is None:
            raise InvalidCommand(f"unknown meter command {name!r}", field="command")
        params = cmd.params if isinstance(cmd.params, Mapping) else {}
        checked = rules.check(name, params)
        if name not in rules.READS and rules.password(params) != self.ekm["password"]:
            raise InvalidCommand("meter password rejected", field="meter_password")
        self._attribute()  # settings that move tariffs apply from now on
        data = handler(checked)
        if name not in rules.READS:
            self.emit(StatusKind.FUNCTION, "ekm", {"command": name, "success": True})
        self.save()
        return CommandResult(ok=True, data={"data": data})

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Json]]:
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

    # each handler gets the parameters as ekm_rules.check normalised them

    def _set_password(self, p: dict[str, Any]) -> Json:
        self.ekm["password"] = p["new_password"]
        return None

    def _set_ct_ratio(self, p: dict[str, Any]) -> Json:
        self.ekm["ct_ratio"] = p["ct_ratio"]
        return None

    def _set_time(self, p: dict[str, Any]) -> Json:
        self.ekm["time_offset_s"] = p["when"] - self.clock.now()
        self._arm_demand(restart=True)
        return None

    def _set_reset_interval(self, p: dict[str, Any]) -> Json:
        self.ekm["max_demand_reset_interval"] = p["interval"]
        return None

    def _reset_max_demand(self, p: dict[str, Any]) -> Json:
        self.ekm["max_demand_w"] = 0.0
        self.ekm["max_demand_at"] = self.clock.now()
        return None

    def _set_demand_period(self, p: dict[str, Any]) -> Json:
        self.ekm["max_demand_period"] = p["period"]
        self._arm_demand(restart=True)
        return None

    def _set_lcd(self, p: dict[str, Any]) -> Json:
        self.ekm["lcd"] = p["lcd"]
        return None

    def _set_pulse_input(self, p: dict[str, Any]) -> Json:
        self.ekm["pulse_input_ratio"][p["line"] - 1] = p["ratio"]
        return None

    def _set_pulse_output(self, p: dict[str, Any]) -> Json:
        self.ekm["pulse_output_ratio"][p["line"] - 1] = p["ratio"]
        return None

    def _zero_kwh(self, p: dict[str, Any]) -> Json:
        self.ekm["kwh_rst_base"] = list(self.registers())
        return None

    def _set_relay(self, p: dict[str, Any]) -> Json:
        channel = self.channels[p["index"]]
        self.set_relay(channel, p["on"], "api", then_for=p["duration"] or None)
        return None

    def _set_holidays(self, p: dict[str, Any]) -> Json:
        self.ekm["holidays"] = p["holidays"]
        return None

    def _set_schedule(self, p: dict[str, Any]) -> Json:
        self.ekm["schedules"][p["schedule"] - 1] = p["periods"]
        return None

    def _set_weekend_holiday(self, p: dict[str, Any]) -> Json:
        self.ekm["weekend_schedule"], self.ekm["holiday_schedule"] = p["weekend"], p["holiday"]
        return None

    def _get_schedules(self, p: dict[str, Any]) -> Json:
        return {
            "schedules": [
                {"schedule": i + 1, "periods": copy.deepcopy(s)}
                for i, s in enumerate(self.ekm["schedules"])
            ],
            "weekend_schedule": self.ekm["weekend_schedule"],
            "holiday_schedule": self.ekm["holiday_schedule"],
            "holidays": copy.deepcopy(self.ekm["holidays"]),
        }

    def _get_tariffs(self, p: dict[str, Any]) -> Json:
        imp, exp = self.registers()
        base = self.ekm["kwh_rst_base"]
        booked = self.ekm["tariff_wh"]
        fwd, rev = _split_kwh([b[0] for b in booked]), _split_kwh([b[1] for b in booked])
        return {
            "current_tariff": self.tariff_now(),
            "tariffs": [
                {"tariff": i + 1, "kWh": fwd[i], "rev_kWh": rev[i]} for i in range(len(booked))
            ],
            "kWh_Tot": round(imp / 1000, 3),
            "Rev_kWh_Tot": round(exp / 1000, 3),
            "kWh_Rst": round((imp - base[0]) / 1000, 3),
            "Rev_kWh_Rst": round((exp - base[1]) / 1000, 3),
            "Max_Demand": round(self.ekm["max_demand_w"], 1),
            "meter_time": self.meter_time().strftime("%Y-%m-%d %H:%M:%S"),
        }


def _split_kwh(wh: list[float]) -> list[float]:
    """Registers in kWh to the Wh, rounded so that they add up to the rounded total."""
    out, before, total = [], 0, 0.0
    for w in wh:
        total += w
        upto = round(total)
        out.append((upto - before) / 1000)
        before = upto
    return out


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
