"""The water-heater power controller twin: relay commands, FFR, capacity, power limits.

The firmware of an Automate Green power-controller-v10 on a resistive water heater. It
answers commands and configuration with device response codes (core/pcconfig.py),
records a `function` status for every answer, and runs its own demand response:
fast frequency response on the grid frequency, a stored-energy (capacity) estimate that
stops and restarts heating, a per-period energy cap, and a schedule of commands.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from switchgear.core.model import (
    CommandResult,
    FirmwareCommand,
    Json,
    StatusKind,
)
from switchgear.core.pcconfig import FIRMWARE, Refused, number, plan_config
from switchgear.devices.pccapacity import Capacity
from switchgear.devices.pcdata import (
    AMBIENT_C,
    COMMANDS,
    MAX_AHEAD_S,
    SELF_HEATING_C_PER_A,
    after_now,
    command_seconds,
    fahrenheit,
)
from switchgear.devices.pcffr import FfrResponse
from switchgear.devices.pclimit import PowerLimit
from switchgear.devices.relay import PendingFlip, RelayChannel
from switchgear.errors import InvalidCommand


class PowerControllerTwin(FfrResponse, Capacity, PowerLimit):
    """One 30 A relay on a water heater, with sensors, FFR, capacity and power limits."""

    # --- readings ---------------------------------------------------------------

    def temperature(self, t: float, power_w: float) -> float | None:
        """The controller's own sensor: ambient plus the relay's self-heating (°C)."""
        v = self.voltage(t)
        amps = power_w / v if v > 0 else 0.0
        return AMBIENT_C + SELF_HEATING_C_PER_A * amps

    def litres(self) -> float:
        heater = self.heater
        if heater is None:
            return 0.0
        heater.advance(self.clock.now())
        return heater.litres

    def sample_period_s(self) -> float:
        return float(self.config["samplePeriod"])

    def extra(self) -> dict[str, Json]:
        heater = self.heater
        return {
            "status": self.last_status,
            "config": self.info(),
            "firmware": FIRMWARE,
            "capacityLevel": round(self._capacity_level(), 3) if self.capacity else None,
            "ffrTripped": bool(self.ffr["tripped"]),
            "water_temperature_c": round(heater.temp_c, 2) if heater else None,
        }

    def info(self) -> dict[str, Json]:
        """The configuration as GET /v1/devices/{id} shows it.

        The sections are shared, not copied: a configuration change replaces them whole
        (plan_config builds new ones), so a shadow holding them never sees them change.
        """
        limit = self.limit
        return {
            "ffr": self.config["ffr"],
            "capacity": self.config["capacity"],
            "flowmeter": self.config["flowmeter"],
            "powerLimit": {"endsAt": int(limit["ends_at"]), "power": limit["power"]}
            if limit
            else {"endsAt": None, "power": None},
            "samplePeriod": self.config["samplePeriod"],
            "schedule": self.config["schedule"],
        }

    def update(self, reason: str) -> None:
        """An `update` status: averages since the last one, as the controller reports them."""
        now = self.clock.now()
        energy = self.energy_wh()
        litres = self.litres()
        t0, e0 = self._last_update
        duration = max(now - t0, 0.0)
        used = max(energy - e0, 0.0)
        v = self.voltage(now)
        avg_w = used * 3600 / duration if duration > 0 else self.points[0].load.power(now)
        c = self.relay
        has_flow = self.config["flowmeter"]["type"] != "none"
        flow = (litres - self._litres_at_update) / (duration / 60) if duration else 0.0
        data: dict[str, Json] = {
            "duration": round(duration),
            "current": round(avg_w / v, 2) if v > 0 else 0.0,
            "voltage": round(v, 2),
            "power": round(used, 2),
            "temperature": round(fahrenheit(self.temperature(now, avg_w) or AMBIENT_C), 1),
            "frequency": round(self.frequency(now), 3),
            "flow": round(flow, 2) if has_flow else None,
            "on": c.on,
            "toggleIn": round(c.toggle_in(now)),
            "toggleAt": int(c.pending.due) if c.pending else None,
            "firmware": FIRMWARE,
        }
        self._last_update = (now, energy)
        self._litres_at_update = litres
        self.last_status = {**data, "date": now}
        heater = self.heater
        # history beyond the vendor's status (its face leaves these out: NATIVE_ONLY)
        data["water_temperature"] = round(heater.temp_c, 2) if heater else None
        data["capacity_level"] = round(self._capacity_level(), 3) if self.capacity else None
        self.emit(StatusKind.UPDATE, reason, data)
        self.save()

    def _relay_data(self, c: RelayChannel, now: float | None = None) -> dict[str, Json]:
        """Relay statuses as the controller logs them: whole seconds to the next toggle."""
        now = self.clock.now() if now is None else now
        return {"on": c.on, "toggleIn": round(c.toggle_in(now))}

    # --- NVRAM ------------------------------------------------------------------

    def nvram(self) -> dict[str, Json]:
        return {
            **super().nvram(),
            "pc": {
                "config": self.config,
                "capacity": self.capacity,
                "limit": self.limit,
                "ffr": self.ffr,
                "last_status": self.last_status,
                "litres_at_update": self._litres_at_update,
                "off_by": self._off_by,
            },
        }

    def restore(self, blob: dict[str, Any]) -> None:
        super().restore(blob)
        pc = blob.get("pc")
        if not isinstance(pc, dict):
            return
        self.config = {**self.config, **pc.get("config", {})}
        self.capacity = dict(pc.get("capacity") or {})
        self.limit = pc.get("limit")
        self.ffr = {**self.ffr, **(pc.get("ffr") or {})}
        self.last_status = dict(pc.get("last_status") or {})
        self._litres_at_update = float(pc.get("litres_at_update", 0.0))
        self._off_by = str(pc.get("off_by", ""))

    # --- lifecycle --------------------------------------------------------------

    def boot(self) -> None:
        super().boot()
        # A restart loses the running averages: the first update covers the time since
        # the boot (one sample period), not the time since the last update before it.
        self._last_update = (self.clock.now(), self.energy_wh())
        self._litres_at_update = self.litres()
        self._arm_schedule()
        if self.limit is not None:
            self._arm("limit_end", self.limit["ends_at"], self._limit_end)
        self._ffr_watch()
        self._rearm()
        self.save()

    def shutdown(self) -> None:
        super().shutdown()
        for timer in [*self._timers.values(), *self._schedule_timers.values()]:
            timer.cancel()
        self._timers.clear()
        self._schedule_timers.clear()
        self._grid_held, self._trip_unlogged = None, False  # off: the held report is lost

    def grid_changed(self) -> None:
        """As a twin's; a step that arms the FFR trip keeps the state at the step now, for
        the trip's report (a fleet logs trips while it still works through a big step: a
        state taken in the `soon` lane could come after the relay opened)."""
        self._grid_physics()
        self._ffr_watch(since=self.grid.changed_at)
        if "ffr_trip" in self._timers or self._trip_unlogged:
            self._grid_report()
        else:
            self.soon(self._grid_report)
        self.soon(self._rearm)

    def set_load(self, point: int, description: dict[str, Any]) -> None:
        super().set_load(point, description)
        self._rearm()

    def set_relay(
        self, c: RelayChannel, on: bool, reason: str, then_for: float | None = None
    ) -> None:
        """Switch the relay; a switch that changes nothing (no state, no pending toggle)
        records no relay status, as the controller logs only what switched."""
        if c.on == on and c.pending is None and not then_for:
            self.relay_changed(c, reason)
            return
        super().set_relay(c, on, reason, then_for)

    def relay_changed(self, c: RelayChannel, reason: str) -> None:
        if not c.on:
            self._off_by = reason
        if reason == "api":
            self.ffr["restore"] = False  # the user decided: the FFR return leaves it alone
        self._rearm()

    # --- commands ---------------------------------------------------------------

    def firmware(self, cmd: FirmwareCommand) -> CommandResult:
        handlers = {"pc.command": self._command, "pc.config": self._configure_pc,
                    "pc.status": self._refresh}  # fmt: skip
        handler = handlers.get(cmd.name)
        if handler is None:
            raise InvalidCommand(f"unknown command {cmd.name!r}", field="command")
        reason = cmd.name.removeprefix("pc.")
        pending = self.relay.pending
        try:
            update, codes = handler(cmd.params)
        except Refused as refused:
            self._answer(reason, {}, list(refused.codes))
            return CommandResult(ok=False, codes=refused.codes, error=str(refused))
        if pending is not None and self.relay.pending is not pending and cmd.name == "pc.command":
            # the relay keeps one pending toggle: a command that drops it says so
            update = {**update, "replaced": {"on": pending.on, "toggleAt": int(pending.due)}}
        self._answer(reason, update, codes)
        self.save()
        return CommandResult(ok=True, codes=tuple(codes), data={"update": update})

    def _answer(self, reason: str, update: Mapping[str, Json], codes: list[int]) -> None:
        """The device's answer, recorded as a `function` status."""
        self.emit(StatusKind.FUNCTION, reason, {"update": dict(update), "responseCodes": codes})

    def _refresh(self, params: Mapping[str, Any]) -> tuple[dict[str, Json], list[int]]:
        """An `api` update covers the time since the last update, and starts the next
        sample period: an automatic update always covers one period ("the duration will
        be 900 seconds"), and no energy is reported twice or left out."""
        self.update("api")
        self._schedule_sample(self.clock.now())
        return {}, [100]

    def _configure_pc(self, params: Mapping[str, Any]) -> tuple[dict[str, Json], list[int]]:
        old = self.config
        new, codes = plan_config(old, params, self.model.nominal_frequency_hz, self.clock.now())
        self.config = new
        if new["capacity"]["enabled"] and not old["capacity"]["enabled"]:
            self.capacity = {}  # a fresh estimate, starting midway
        if new["schedule"] != old["schedule"]:
            self._arm_schedule()
        if new["samplePeriod"] != old["samplePeriod"]:
            # the new period counts from the last update (at once if already past): the
            # next automatic update covers one new period, not the old one's rest as well
            now = self.clock.now()
            self._schedule_sample(max(self._last_update[0], now - self.sample_period_s()))
        if new["ffr"] != old["ffr"]:
            self._ffr_watch()
        self._rearm()
        return {k: copy.deepcopy(new[k]) for k in params}, codes

    def _command(self, params: Mapping[str, Any]) -> tuple[dict[str, Json], list[int]]:
        name = params.get("name")
        if name not in COMMANDS:
            raise Refused(-992)
        now = self.clock.now()
        c = self.relay
        if name == "reset":
            self.power_cycle()
            return {"reset": True}, [10]
        if name == "limit_power":
            return self._limit_power(params)
        self.ffr["restore"] = False  # the user decides now, not the FFR return
        if name in ("on", "off"):
            on = name == "on"
            delay = command_seconds(params.get("delay", 0))
            if delay > 0:
                c.arm(self.scheduler, PendingFlip(now + delay, on, "timer"), self._fire)
                return {"on": on, "toggleIn": delay}, [106 if on else 107]
            self.set_relay(c, on, "api")
            return {"on": on}, [102 if on else 103]
        if name in ("on_for", "off_for"):
            on = name == "on_for"
            period = command_seconds(params.get("time", params.get("delay")), positive=True)
            self.set_relay(c, on, "api", then_for=period)
            return {"on": on, "toggleIn": period}, [104 if on else 105]
        on = name == "on_at"
        when = number(params.get("time"))
        if when is None or when <= now or when > now + MAX_AHEAD_S:
            raise Refused(-992)  # past, or not unix seconds (milliseconds reach year 58,000)
        c.arm(self.scheduler, PendingFlip(when, on, "timer"), self._fire)
        return {"on": on, "toggleAt": when}, [106 if on else 107]

    # --- schedule -----------------------------------------------------------------

    def _arm_schedule(self) -> None:
        for timer in self._schedule_timers.values():
            timer.cancel()
        self._schedule_timers = {}
        now = self.clock.now()
        for index, entry in enumerate(self.config["schedule"]):
            due = float(entry["when"])
            repeat = float(entry["repeat"])
            if due <= now:
                if repeat <= 0:
                    continue  # a one-off entry whose time passed while the device was off
                due += -(-(now - due) // repeat) * repeat
                if due <= now:
                    due += repeat
            self._schedule_timers[index] = self.scheduler.call_at(due, self._run_entry, index)

    def _run_entry(self, index: int) -> None:
        entries = self.config["schedule"]
        if index >= len(entries):
            return
        entry = entries[index]
        self._schedule_timers.pop(index, None)
        self.ffr["restore"] = False
        if entry["name"] == "limit_power":
            self._limit_start(float(entry["power"]), float(entry["time"]), "timer")
        else:
            self.set_relay(self.relay, entry["name"] == "on", "timer")
        if float(entry["repeat"]) > 0:
            due = self.clock.now() + float(entry["repeat"])
            self._schedule_timers[index] = self.scheduler.call_at(due, self._run_entry, index)
        self.save()

    def _rearm(self) -> None:
        """Re-plan the capacity and power-limit checks after anything changed."""
        if self.config["capacity"]["enabled"]:
            if not self.capacity:
                self._capacity_rebase()
            self._arm("capacity", self._capacity_next(), self._capacity_check)
        else:
            self._cancel("capacity")
        limit = self.limit
        if limit is None or not self.relay.on:
            self._cancel("limit")
            return
        now = self.clock.now()
        power = self.points[0].load.power(now)
        left = limit["power"] - (self.energy_wh() - limit["start_wh"])
        change = self.points[0].load.next_change()
        due = now + left * 3600 / power if power > 0 else None
        if change is not None and (due is None or change < due):
            due = change
        if due is not None and due < limit["ends_at"]:
            self._arm("limit", after_now(now, due), self._limit_check)
        else:
            self._cancel("limit")
