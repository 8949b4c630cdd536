"""Twin: the firmware of a generic relay device, built from its catalogue row.

A twin is a synchronous state machine on the injected clock and scheduler. Commands
apply at once; every relay change, trigger and periodic update is emitted as a
DeviceEvent, and every state change is saved to NVRAM through the nvram sink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchgear.core.catalog import DeviceModel
from switchgear.core.clock import Clock
from switchgear.core.model import (
    Action,
    ChannelSettings,
    Command,
    CommandResult,
    Configure,
    Device,
    DeviceEvent,
    DeviceState,
    FirmwareCommand,
    Json,
    Refresh,
    StatusKind,
    Switch,
)
from switchgear.core.ports import EventSink
from switchgear.core.scheduler import Scheduler, Timer
from switchgear.devices.metering import MeterPoint, installed_registers, wobble
from switchgear.devices.physics import GridOverride, ThermostatLoad
from switchgear.devices.protections import judge_overpower
from switchgear.devices.relay import PendingFlip, RelayChannel, check_patch, check_seconds
from switchgear.errors import DeviceOffline, InvalidCommand, InvalidInput

# Receives a device's NVRAM as a function building the blob: the journal builds it once
# per group commit, however often the device saved since the last one.
NvramSink = Callable[[int, Callable[[], Json]], None]
NVRAM_VERSION = 1
_SWITCH_TO = {Action.ON: True, Action.OFF: False}


class Twin:
    """A simulated device: relays with timers, protections, meters, NVRAM."""

    def __init__(
        self,
        device: Device,
        model: DeviceModel,
        clock: Clock,
        scheduler: Scheduler,
        grid: GridOverride,
        emit: EventSink,
        save: NvramSink,
    ) -> None:
        self.device = device
        self.model = model
        self.clock = clock
        self.scheduler = scheduler
        self.grid = grid
        self._emit = emit
        self._save = save
        now = clock.now()
        defaults = ChannelSettings(power_on=model.default_power_on)
        self.channels = [RelayChannel(i, s, defaults) for i, s in enumerate(model.channels)]
        self.points = [
            MeterPoint(i, now, model.nominal_voltage_v) for i in range(model.meter_points)
        ]
        # which relay cuts each metering point: catalogue data, fixed for the device's life
        self._cut_by = [model.meter_cut_by(p.index) for p in self.points]
        self._cut = [
            [p for p, by in zip(self.points, self._cut_by, strict=True) if by == c.index]
            for c in self.channels
        ]
        registers = installed_registers(device.attrs.get("registers_wh", ""))
        for p, wh in zip(self.points, registers, strict=False):
            p.base_import_wh = wh  # a meter installed with years on it (NVRAM overrides)
        self.online = True
        self.retired = False  # left the fleet (replaced or removed): for good
        self._sample: Timer | None = None
        self._checks: dict[int, Timer] = {}
        # time and import energy of the last update status
        self._last_update = (now, sum(p.base_import_wh for p in self.points))
        # a 3-phase meter reports each phase: its import register at the last update
        self._per_phase = model.metering != "channel" and model.phases > 1
        self._phase_wh = [p.base_import_wh for p in self.points]
        self.setup()

    def setup(self) -> None:
        """Hook: a family's own state, once the generic parts are built (before NVRAM)."""

    # --- readings -------------------------------------------------------------

    def voltage(self, t: float, point: int = 0) -> float:
        base = (
            self.grid.voltage_v if self.grid.voltage_v is not None else self.model.nominal_voltage_v
        )
        return base * (1 + wobble(t, self.device.id * 7.0 + point, 0.004))

    def frequency(self, t: float) -> float:
        if self.grid.frequency_hz is not None:
            return self.grid.frequency_hz
        return self.model.nominal_frequency_hz + wobble(t, self.device.id * 3.0, 0.012)

    def temperature(self, t: float, power_w: float) -> float | None:
        for p in self.points:
            water = p.water_temperature()
            if water is not None:
                return water
        if self.model.has_temperature:
            return 24.0 + 0.002 * power_w + wobble(t, self.device.id, 0.4)
        return None

    def snapshot(self) -> DeviceState:
        """The state reported now (list comprehensions, positional record: once per event)."""
        now = self.clock.now()
        f = self.frequency(now)
        meters = tuple([p.reading(now, self.voltage(now, p.index), f) for p in self.points])
        total = sum([m.power_w for m in meters])
        channels = tuple([c.state() for c in self.channels])
        return DeviceState(
            self.device.id, now, self.online, channels, meters,
            self.temperature(now, total), self.extra(),
        )  # fmt: skip

    def extra(self) -> dict[str, Json]:
        """Family-specific readings and settings for the shadow (families override)."""
        return {}

    def energy_wh(self) -> float:
        now = self.clock.now()
        for p in self.points:
            p.load.advance(now)
        return sum(p.energy()[0] for p in self.points)

    # --- events and NVRAM -----------------------------------------------------

    def emit(
        self, kind: StatusKind, reason: str, data: dict[str, Json], channel: int | None = None,
        *, record: bool = True, force: bool = False, topic: str | None = None,
        state: DeviceState | None = None, at: float | None = None,
    ) -> None:  # fmt: skip
        """Report an event; `state` is a snapshot taken this instant, if the caller has one;
        `at` is when it happened, for a report made after the fact."""
        if not self.online and not force:
            return  # off the network: nothing reaches the cloud
        now = self.clock.now() if at is None else at
        self._emit(
            DeviceEvent(
                self.device.id, now, kind, reason, data, state or self.snapshot(), channel,
                record, topic,
            )
        )  # fmt: skip

    def save(self) -> None:
        self._save(self.device.id, self.nvram)

    def nvram(self) -> dict[str, Json]:
        return {
            "v": NVRAM_VERSION,
            "channels": [c.to_json() for c in self.channels],
            "points": [p.to_json() for p in self.points],
            "last_update": list(self._last_update),
            "phase_wh": list(self._phase_wh),
        }

    def restore(self, blob: dict[str, Any]) -> None:
        for c, d in zip(self.channels, blob.get("channels", ()), strict=False):
            c.restore(d)
        for p, d in zip(self.points, blob.get("points", ()), strict=False):
            p.restore(d)
        t, e = blob.get("last_update", self._last_update)
        self._last_update = (float(t), float(e))
        wh = blob.get("phase_wh") or [p.energy()[0] for p in self.points]
        self._phase_wh = [float(x) for x in wh]

    # --- lifecycle ------------------------------------------------------------

    def boot(self) -> None:
        """Power on: loads were unsupplied while off; relays take their power-on state."""
        now = self.clock.now()
        for p in self.points:
            p.load.set_supplied(p.load.t, False)
            p.load.advance(now)
        due: list[tuple[RelayChannel, PendingFlip]] = []
        for c in self.channels:
            flip = c.take_pending()
            c.on = c.boot_state()
            self._supply(c)
            if flip is not None:
                due.append((c, flip))
        state = self.snapshot() if self.online else None  # one instant for every channel
        for c in self.channels:
            self.emit(StatusKind.RELAY, "reboot", self._relay_data(c), c.index, state=state)
        for c, flip in due:
            c.arm(self.scheduler, flip, self._fire)  # overdue ones fire on the next tick
        for c in self.channels:
            if c.pending is None:
                self._arm_flip_back(c, None)
        self._schedule_sample(now)
        self._check_all()
        self.save()

    def power_cycle(self) -> None:
        blob = self.nvram()
        self.shutdown()
        self.restore(blob)
        self.boot()

    def shutdown(self) -> None:
        """Stop every timer (the device loses power or leaves the fleet)."""
        for c in self.channels:
            c.cancel()
        for t in self._checks.values():
            t.cancel()
        self._checks.clear()
        if self._sample is not None:
            self._sample.cancel()
            self._sample = None

    def retire(self) -> None:
        """Leave the fleet for good: timers stop, queued `soon` work is dropped."""
        self.shutdown()
        self.retired = True

    def soon(self, fn: Callable[[], None]) -> None:
        """`fn()` once the timers due now have fired, unless the twin retired meanwhile."""

        def run() -> None:
            if not self.retired:
                fn()

        self.scheduler.soon(run)

    def set_online(self, online: bool) -> None:
        if online == self.online:
            return
        if online:
            self.online = True
            self.emit(StatusKind.CONNECTION, "online", {"online": True})
        else:
            self.online = False
            # the broker's last will tells the cloud the device is gone
            self.emit(StatusKind.CONNECTION, "offline", {"online": False}, force=True)

    def set_load(self, point: int, description: dict[str, Any]) -> None:
        if not 0 <= point < len(self.points):
            raise InvalidInput(f"no metering point {point} on this device", field="channel")
        self.points[point].replace_load(self.clock.now(), description)
        self._check_all()
        self.emit(StatusKind.UPDATE, "load", {}, record=False)
        self.save()

    def grid_changed(self) -> None:
        """The grid stepped: the physics follows now; protections and the report after the
        timers due now (a fleet's FFR trips must not wait behind 10,000 reports)."""
        self._grid_physics()
        self.soon(self._grid_report)

    def _grid_physics(self) -> None:
        now = self.clock.now()
        for p in self.points:
            if isinstance(p.load, ThermostatLoad):
                p.load.set_voltage(now, self.voltage(now, p.index))

    def _grid_report(self) -> None:
        self._check_all()
        self.emit(StatusKind.UPDATE, "grid", {}, record=False)

    # --- commands -------------------------------------------------------------

    def handle(self, cmd: Command) -> CommandResult:
        """Apply a command from the network; invalid ones raise before changing anything."""
        if not self.online:
            raise DeviceOffline("device is offline")
        if isinstance(cmd, Switch):
            return self._switch(cmd)
        if isinstance(cmd, Configure):
            return self._configure(cmd)
        if isinstance(cmd, Refresh):
            self.update("api")
            return CommandResult(ok=True)
        if isinstance(cmd, FirmwareCommand):
            return self.firmware(cmd)
        raise InvalidCommand(f"unsupported command {cmd!r}", field="command")

    def firmware(self, cmd: FirmwareCommand) -> CommandResult:
        """Family-specific commands; the generic firmware has none."""
        raise InvalidCommand(f"unknown command {cmd.name!r}", field="command")

    def select(self, channel: int | None) -> list[RelayChannel]:
        if channel is None:
            if not self.channels:
                raise InvalidCommand("this device has no relay", field="channel")
            return list(self.channels)
        if isinstance(channel, bool) or not 0 <= channel < len(self.channels):
            raise InvalidCommand(f"no channel {channel} on this device", field="channel")
        return [self.channels[channel]]

    def _switch(self, cmd: Switch) -> CommandResult:
        channels = self.select(cmd.channel)
        check_seconds(cmd.delay, "delay")
        check_seconds(cmd.duration, "duration", positive=True)
        now = self.clock.now()
        for c in channels:
            on = not c.on if cmd.action == Action.TOGGLE else _SWITCH_TO[cmd.action]
            if cmd.delay > 0:
                c.arm(
                    self.scheduler,
                    PendingFlip(now + cmd.delay, on, "timer", cmd.duration),
                    self._fire,
                )
                self.emit(StatusKind.FUNCTION, "timer", {"on": on, "toggleIn": cmd.delay}, c.index)
            else:
                self.set_relay(c, on, "api", then_for=cmd.duration)
        self.save()
        return CommandResult(ok=True, data={"on": [c.on for c in channels]})

    def _configure(self, cmd: Configure) -> CommandResult:
        channels = self.select(cmd.channel) if cmd.channel is not None else list(self.channels)
        check_patch(cmd.patch)
        for c in channels:
            c.settings = cmd.patch.apply(c.settings)
            c.drop_disabled_flip_back()
        self._check_all()
        self.emit(StatusKind.FUNCTION, "settings", {"channels": [c.index for c in channels]})
        self.save()
        return CommandResult(ok=True)

    # --- relay machinery ------------------------------------------------------

    def set_relay(
        self, c: RelayChannel, on: bool, reason: str, then_for: float | None = None
    ) -> None:
        """Switch a relay now, arm what follows, report it."""
        now = self.clock.now()
        c.cancel()
        if on:
            c.overpower = False
        c.on = on
        self._supply(c)
        if then_for:
            c.arm(self.scheduler, PendingFlip(now + then_for, not on, "auto"), self._fire)
        elif reason != "overpower":
            self._arm_flip_back(c, reason)
        self.emit(StatusKind.RELAY, reason, self._relay_data(c), c.index)
        self._check(c)
        self.relay_changed(c, reason)

    def relay_changed(self, c: RelayChannel, reason: str) -> None:
        """Hook: a relay was switched (families re-arm what depends on it)."""

    def _arm_flip_back(self, c: RelayChannel, reason: str | None) -> None:
        """Auto-off after turning on, auto-on after turning off, if set."""
        delay = c.settings.auto_off_s if c.on else c.settings.auto_on_s
        if delay > 0:
            c.arm(
                self.scheduler,
                PendingFlip(self.clock.now() + delay, not c.on, "auto", flip_back=True),
                self._fire,
            )

    def _fire(self, c: RelayChannel) -> None:
        flip = c.take_pending()
        if flip is None:
            return
        self.set_relay(c, flip.on, flip.reason, then_for=flip.then_for)
        self.save()

    def _relay_data(self, c: RelayChannel, now: float | None = None) -> dict[str, Json]:
        now = self.clock.now() if now is None else now
        return {"on": c.on, "toggleIn": round(c.toggle_in(now), 3)}

    def _supply(self, c: RelayChannel, now: float | None = None) -> None:
        now = self.clock.now() if now is None else now
        for p, cut_by in zip(self.points, self._cut_by, strict=True):
            if cut_by == c.index:
                p.load.set_supplied(now, c.on)
            elif cut_by is None:
                p.load.set_supplied(now, True)

    # --- protections ----------------------------------------------------------

    def _check_all(self) -> None:
        for c in self.channels:
            self._check(c)

    def _check(self, c: RelayChannel) -> None:
        old = self._checks.pop(c.index, None)
        if old is not None:
            old.cancel()
        now = self.clock.now()
        points = self._cut[c.index]
        if not points:
            return
        power = peak = 0.0
        change: float | None = None  # the soonest a load on this relay changes by itself
        for p in points:  # one pass: this runs on every switch
            load = p.load
            power += load.power(now)
            peak += load.peak_w
            t = load.next_change()
            if t is not None and (change is None or t < change):
                change = t
        verdict = judge_overpower(c, self.model.max_power_w, power, peak, change)
        if verdict.trip:
            self.emit(
                StatusKind.TRIGGER, "overpower",
                {"power": round(verdict.power_w, 2), "limit": verdict.limit_w}, c.index,
            )  # fmt: skip
            self.set_relay(c, False, "overpower")
            c.overpower = True
            self.emit(StatusKind.UPDATE, "overpower", {}, record=False)
        elif verdict.recheck_at is not None:
            self._checks[c.index] = self.scheduler.call_at(verdict.recheck_at, self._recheck, c)

    def _recheck(self, c: RelayChannel) -> None:
        self._checks.pop(c.index, None)
        self._check(c)
        self.save()

    # --- periodic updates -----------------------------------------------------

    def _schedule_sample(self, now: float) -> None:
        if self._sample is not None:
            self._sample.cancel()
        self._sample = self.scheduler.call_at(now + self.sample_period_s(), self._on_sample)

    def sample_period_s(self) -> float:
        """Seconds between automatic `update` statuses (families may make it a setting)."""
        return self.model.sample_period_s

    def _phases(self, state: DeviceState, duration: float) -> list[Json]:
        """Each phase's average power since the last update, its voltage, current, register."""
        out: list[Json] = []
        for m, wh0 in zip(state.meters, self._phase_wh, strict=False):
            avg = (m.energy_wh - wh0) * 3600 / duration if duration else m.power_w
            out.append({"power": round(avg, 2), "voltage": round(m.voltage_v, 2),
                        "current": round(m.current_a, 3),
                        "energy_wh": round(m.energy_wh, 3)})  # fmt: skip
        self._phase_wh = [m.energy_wh for m in state.meters]
        return out

    def _on_sample(self, _: object) -> None:
        self._sample = None
        self.update("auto")
        self._schedule_sample(self.clock.now())

    def update(self, reason: str) -> None:
        """An `update` status: readings averaged since the last update."""
        now = self.clock.now()
        energy = self.energy_wh()
        t0, e0 = self._last_update
        duration = max(now - t0, 0.0)
        state = self.snapshot()
        m0 = state.meters[0] if state.meters else None
        data: dict[str, Json] = {
            "duration": round(duration, 3),
            "power": round((energy - e0) * 3600 / duration, 2) if duration else 0.0,
            "energy_wh": round(energy, 3),
            "voltage": round(m0.voltage_v, 2) if m0 else None,
            "current": round(sum(m.current_a for m in state.meters), 3),
            "frequency": round(self.frequency(now), 3),
            "temperature": round(state.temperature_c, 2)
            if state.temperature_c is not None
            else None,
            "on": [c.on for c in self.channels] if len(self.channels) != 1 else self.channels[0].on,
        }
        if self._per_phase:
            data["phases"] = self._phases(state, duration)
        self._last_update = (now, energy)
        self.emit(StatusKind.UPDATE, reason, data, state=state)
        self.save()
