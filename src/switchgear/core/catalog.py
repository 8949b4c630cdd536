"""The catalogue of device models: frozen data rows, one per model.

Per-model differences live here as data; no code branches on a vendor.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchgear.core.model import Family, PowerOn
from switchgear.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    kind: str = "relay"  # outlet, usb, load, aux ...


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """One device model and what its hardware can do."""

    code: str
    family: Family
    vendor: str
    description: str
    channels: tuple[ChannelSpec, ...]
    # Metering: "channel" = one metering point per relay channel (its load);
    # "phases" = `phases` points, all cut by relay 0 (a meter's load relay);
    # "independent" = `phases` points not switched by any relay; "none".
    metering: str = "channel"
    phases: int = 1
    # For "independent" metering: the relay that cuts each point (None: not switched).
    cut_by: tuple[int | None, ...] = ()
    nominal_voltage_v: float = 230.0
    nominal_frequency_hz: float = 50.0
    max_power_w: float | None = None  # hardware over-power limit, if any
    default_power_on: PowerOn = PowerOn.OFF
    sample_period_s: float = 900.0  # automatic `update` status cadence
    has_temperature: bool = False
    serial_prefix: str = ""

    @property
    def relays(self) -> int:
        return len(self.channels)

    def meter_cut_by(self, point: int) -> int | None:
        """The relay whose opening cuts metering point `point`, if any."""
        if self.metering == "channel":
            return point
        if self.metering == "phases":
            return 0
        if point < len(self.cut_by):
            return self.cut_by[point]
        return None

    @property
    def meter_points(self) -> int:
        if self.metering == "channel":
            return self.relays
        if self.metering == "none":
            return 0
        return self.phases


MODELS: tuple[DeviceModel, ...] = (
    DeviceModel(
        code="SHPLG-1",
        family=Family.PLUG,
        vendor="Shelly / MClimate",
        description="Smart plug, one relay, power metering",
        channels=(ChannelSpec("relay"),),
        max_power_w=3500.0,
        serial_prefix="SPG",
    ),
    DeviceModel(
        code="SNPL-00112EU",
        family=Family.PLUG,
        vendor="Shelly",
        description="Shelly Plus Plug S (Gen2), one relay, power metering; real devices only",
        channels=(ChannelSpec("relay"),),
        max_power_w=2500.0,
    ),
    DeviceModel(
        code="LG-MULTI-4",
        family=Family.STRIP,
        vendor="Legrand",
        description="Multisocket strip: three outlets and a USB block, each switched",
        channels=(
            ChannelSpec("Outlet 1", "outlet"),
            ChannelSpec("Outlet 2", "outlet"),
            ChannelSpec("Outlet 3", "outlet"),
            ChannelSpec("USB", "usb"),
        ),
        max_power_w=3680.0,
        serial_prefix="LGM",
    ),
    DeviceModel(
        code="power-controller-v10",
        family=Family.LOAD_CONTROLLER,
        vendor="Automate Green",
        description="Power Controller on a water heater: one 30 A relay, metering, sensors",
        channels=(ChannelSpec("load", "load"),),
        nominal_voltage_v=240.0,
        nominal_frequency_hz=60.0,
        default_power_on=PowerOn.ON,
        has_temperature=True,
        serial_prefix="PC",
    ),
    DeviceModel(
        code="OMNIMETER-V4",
        family=Family.METER,
        vendor="EKM Metering",
        description="Omnimeter Pulse v.4: three-phase meter with two relay outputs",
        channels=(ChannelSpec("Relay_1", "aux"), ChannelSpec("Relay_2", "aux")),
        metering="independent",
        phases=3,
        cut_by=(0, 1, None),  # each relay drives the contactor of one line's load
        default_power_on=PowerOn.LAST,
        nominal_voltage_v=120.0,
        nominal_frequency_hz=60.0,
        serial_prefix="",
    ),
    DeviceModel(
        code="PUSH3",
        family=Family.GATEWAY,
        vendor="EKM Metering",
        description="Push3 gateway: relays commands to its meters",
        channels=(),
        metering="none",
        phases=0,
        serial_prefix="",
    ),
    DeviceModel(
        code="D101",
        family=Family.METER,
        vendor="smart-MAIC",
        description="Wi-Fi energy meter, single-phase, standard version, load relay",
        channels=(ChannelSpec("pout", "load"),),
        metering="phases",
        phases=1,
        has_temperature=True,
        serial_prefix="",
    ),
    DeviceModel(
        code="D103",
        family=Family.METER,
        vendor="smart-MAIC",
        description="Wi-Fi energy meter, three-phase, extended version, load relay",
        channels=(ChannelSpec("pout", "load"),),
        metering="phases",
        phases=3,
        has_temperature=True,
        serial_prefix="",
    ),
)

CATALOG: dict[str, DeviceModel] = {m.code: m for m in MODELS}


def model(code: str) -> DeviceModel:
    """The catalogue row for `code`."""
    try:
        return CATALOG[code]
    except KeyError:
        raise InvalidInput(f"unknown device model {code!r}", field="model") from None
