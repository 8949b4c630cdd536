"""The power controller twin's shared state: its configuration, relay, heater and timers."""

from __future__ import annotations

from typing import Any

from switchgear.core.model import DeviceState, Json
from switchgear.core.pcconfig import default_config
from switchgear.core.scheduler import Timer
from switchgear.devices.pcdata import DEFAULT_HEATER
from switchgear.devices.physics import ThermostatLoad
from switchgear.devices.relay import RelayChannel
from switchgear.devices.twin import Twin


class PcTwinBase(Twin):
    """What the power controller's capabilities (FFR, capacity, power limit) share."""

    def setup(self) -> None:
        self.points[0].replace_load(self.clock.now(), DEFAULT_HEATER)
        self.config: dict[str, Any] = default_config(self.device.attrs.get("flowmeter", "none"))
        self.capacity: dict[str, float] = {}  # baseline of the stored-energy estimate
        self.limit: dict[str, float] | None = None  # the running limit_power, if any
        self.ffr: dict[str, Any] = {"tripped": False, "restore": False, "events": 0}
        self.last_status: dict[str, Json] = {}  # the last `update` status, with its date
        self._litres_at_update = 0.0
        self._off_by: str = ""  # what last opened the relay
        self._timers: dict[str, Timer] = {}
        self._schedule_timers: dict[int, Timer] = {}
        # a grid step's `update/grid` report (when, its state) held for the FFR trip's
        # message: one report a trip, not a second message 10 cycles before it
        self._grid_held: tuple[float, DeviceState] | None = None
        self._trip_unlogged = False  # the relay opened, its log (`soon`) not written yet

    @property
    def relay(self) -> RelayChannel:
        return self.channels[0]

    @property
    def heater(self) -> ThermostatLoad | None:
        load = self.points[0].load
        return load if isinstance(load, ThermostatLoad) else None

    # --- timers -------------------------------------------------------------------

    def _arm(self, name: str, due: float, fn: Any, *, shared: bool = False) -> None:
        self._cancel(name)
        self._timers[name] = self.scheduler.call_at(due, fn, shared=shared)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _rearm(self) -> None:
        """Re-plan the capacity and power-limit checks (the twin's own, after any change)."""
        raise NotImplementedError
