"""The fleet: every simulated device of this process, and each account's grid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchgear.core.catalog import model as catalog_model
from switchgear.core.clock import Clock
from switchgear.core.model import Device, Family, Json
from switchgear.core.ports import EventSink, SimAction
from switchgear.core.scheduler import Scheduler
from switchgear.devices.gateway import DEFAULT_MAX_DELAY_S, GatewayTwin
from switchgear.devices.meter import MeterTwin
from switchgear.devices.multisocket import StripTwin
from switchgear.devices.omnimeter import OmnimeterTwin
from switchgear.devices.physics import GridOverride
from switchgear.devices.plug import PlugTwin
from switchgear.devices.powercontroller import PowerControllerTwin
from switchgear.devices.twin import NvramSink, Twin
from switchgear.errors import DeviceNotFound, InvalidInput

TWINS: dict[Family, type[Twin]] = {
    Family.PLUG: PlugTwin,
    Family.STRIP: StripTwin,
    Family.LOAD_CONTROLLER: PowerControllerTwin,
    Family.METER: MeterTwin,
    Family.GATEWAY: GatewayTwin,
}
MODEL_TWINS: dict[str, type[Twin]] = {"OMNIMETER-V4": OmnimeterTwin}  # beats the family's


class Fleet:
    """Builds twins from the catalogue, boots them, and applies physical-world changes."""

    def __init__(
        self,
        clock: Clock,
        scheduler: Scheduler,
        emit: EventSink,
        save: NvramSink,
        gateway_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        self.clock = clock
        self.gateway_delay_s = gateway_delay_s
        self.scheduler = scheduler
        self._emit = emit
        self._save = save
        self._twins: dict[int, Twin] = {}
        # meters on a gateway's bus by (gateway serial, address): a command a gateway runs
        # finds its meter without a walk over the fleet
        self._on_bus: dict[tuple[str, str], Twin] = {}
        self._of_account: dict[int, dict[int, Twin]] = {}  # a grid step reaches these only
        self._grids: dict[int, GridOverride] = {}
        # told of every grid change (account id, its grid) before the devices see it
        self.grid_observers: list[Callable[[int, GridOverride], None]] = []

    def __len__(self) -> int:
        return len(self._twins)

    def add(self, device: Device, nvram: Json | None = None) -> Twin:
        """Create the device's twin, restore its NVRAM, and boot it."""
        model = catalog_model(device.model)
        cls = MODEL_TWINS.get(model.code) or TWINS[model.family]
        twin = cls(
            device, model, self.clock, self.scheduler, self.grid(device.account_id),
            self._emit, self._save,
        )  # fmt: skip
        if isinstance(twin, GatewayTwin):
            twin.attach(self._meter_on, self.gateway_delay_s)
        if isinstance(nvram, dict):
            twin.restore(nvram)
        old = self._twins.get(device.id)
        if old is not None:  # a twin built again: its former one retires
            self._unindex(old)
            old.retire()
        self._twins[device.id] = twin
        self._of_account.setdefault(device.account_id, {})[device.id] = twin
        gateway = device.attrs.get("gateway")
        if gateway is not None:
            self._on_bus[gateway, device.serial] = twin
        twin.boot()
        return twin

    def get(self, device_id: int) -> Twin | None:
        return self._twins.get(device_id)

    def _meter_on(self, gateway_serial: str, address: str) -> Twin | None:
        """The meter with this address on the gateway's bus, if one answers."""
        return self._on_bus.get((gateway_serial, address))

    def remove(self, device_id: int) -> None:
        twin = self._twins.pop(device_id, None)
        if twin is not None:
            self._unindex(twin)
            twin.retire()

    def _unindex(self, twin: Twin) -> None:
        """Out of the indexes a twin of this id was in (it is replaced or removed)."""
        self._of_account.get(twin.device.account_id, {}).pop(twin.device.id, None)
        key = (twin.device.attrs.get("gateway", ""), twin.device.serial)
        if self._on_bus.get(key) is twin:
            del self._on_bus[key]

    def grid(self, account_id: int) -> GridOverride:
        return self._grids.setdefault(account_id, GridOverride())

    def set_grid(
        self,
        account_id: int,
        frequency_hz: float | None = None,
        voltage_v: float | None = None,
        at: float | None = None,
    ) -> None:
        """`at`: when the grid stepped, if before now (a step heard over the broker late)."""
        g = self.grid(account_id)
        now = self.clock.now()
        g.changed_at = now if at is None else min(at, now)
        if frequency_hz is not None:
            g.frequency_hz = frequency_hz
        if voltage_v is not None:
            g.voltage_v = voltage_v
        for observe in self.grid_observers:
            observe(account_id, g)
        self._grid_changed(account_id)

    def reset_grid(self, account_id: int, *, frequency: bool, voltage: bool) -> None:
        """Back to the model's nominal frequency and/or voltage (the end of a grid event)."""
        g = self.grid(account_id)
        g.changed_at = self.clock.now()
        if frequency:
            g.frequency_hz = None
        if voltage:
            g.voltage_v = None
        for observe in self.grid_observers:
            observe(account_id, g)
        self._grid_changed(account_id)

    def _grid_changed(self, account_id: int) -> None:
        """Tell the account's twins (not the rest of the fleet) their grid changed: at one
        instant, as a step reaches them all at once (the clock pinned meanwhile)."""
        held = self.clock.pin()
        try:
            for twin in list(self._of_account.get(account_id, {}).values()):
                twin.grid_changed()
        finally:
            self.clock.unpin(held)

    def apply(self, device_id: int, action: SimAction) -> None:
        twin = self._twins.get(device_id)
        if twin is None:
            raise DeviceNotFound("device not found")
        if action.kind == "power_cycle":
            twin.power_cycle()
        elif action.kind == "online":
            twin.set_online(bool(action.online))
        elif action.kind == "load":
            load: Any = action.load
            if not isinstance(load, dict):
                raise InvalidInput("load must be an object", field="load")
            twin.set_load(action.channel or 0, load)
        elif action.kind == "grid":
            self.set_grid(twin.device.account_id, action.frequency_hz, action.voltage_v)
        else:
            raise InvalidInput(f"unknown simulation {action.kind!r}", field="kind")
