"""What each `protocol` of an import row becomes: a simulated twin, a Shelly, a polled meter.

One row of `KINDS` per protocol: how a row's fields build the device, and what the server
must have for it (an MQTT link, a meter address it may poll). The import never branches
on a protocol's name; it asks the row.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from switchgear.core.catalog import CATALOG
from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import Device, Family
from switchgear.dialects.meterhttp.wire import DEFAULT_VERSION
from switchgear.errors import InvalidInput
from switchgear.importrows import Fields
from switchgear.links.shelly import PROTOCOLS, canonical_mqtt_id

if TYPE_CHECKING:
    from switchgear.runtime import Runtime

SIMULATED = "simulated"
# One answer for a malformed serial and for one already registered to anyone else, as on
# every face: the report never tells whose a serial is.
SERIAL_REFUSED = "serial: not a serial that can be added for this model"
ADDRESS_REFUSED = "address: not an MQTT id that can be adopted"
NO_MQTT = "protocol: this server has no MQTT link: start it with --link mqtt://host:port"
MQTT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # one topic level, as adoption
URL = re.compile(r"^https?://[^\s]+$")
DEVID = re.compile(r"^[0-9]{10}$")
PIN = re.compile(r"^[0-9]{6}$")


def _same(serial: str) -> str:
    return serial


def _address(serial: str) -> str:
    """A Push3 meter address: 12 characters, zero-padded on the left, as its gateway
    addresses it (`sendCommand` pads a short `target_id` the same way)."""
    return serial.zfill(12)


@dataclass(frozen=True)
class SerialRule:
    """What a model's serials look like, the serial stored for one, the attributes its
    twin starts with, and whether it sits on a Push3 gateway's bus (then it needs one)."""

    pattern: re.Pattern[str]
    attrs: Callable[[], Mapping[str, str]] = dict
    stored: Callable[[str], str] = _same
    on_gateway: bool = False


def _pin() -> Mapping[str, str]:
    return {"devpass": f"{secrets.randbelow(1_000_000):06d}"}


GENERIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$")
# per model: the serial its own face addresses it by (models absent here: real devices only)
RULES: dict[str, SerialRule] = {
    "SHPLG-1": SerialRule(GENERIC),
    "LG-MULTI-4": SerialRule(GENERIC),
    "power-controller-v10": SerialRule(re.compile(r"^PC-[A-Z0-9]{6,20}-\d{3}$")),
    "OMNIMETER-V4": SerialRule(
        re.compile(r"^[0-9A-Za-z]{1,12}$"),
        lambda: {"meter_password": "00000000"},
        stored=_address,
        on_gateway=True,
    ),
    "PUSH3": SerialRule(re.compile(r"^[0-9A-Za-z]{1,12}$")),
    "D101": SerialRule(re.compile(r"^[0-9]{10}$"), lambda: {"version": "standard", **_pin()}),
    "D103": SerialRule(re.compile(r"^[0-9]{10}$"), lambda: {"version": "extended", **_pin()}),
}


@dataclass
class Context:
    """What one import's checks share: the server's links and what the file took so far."""

    rt: Runtime
    account_id: int
    meters: int = 0  # meters the account polls, with the file's so far
    mqtt_ids: set[str] = field(default_factory=set)  # MQTT ids of the file's earlier rows
    gateways: list[str] | None = None  # the account's Push3 gateways, the file's so far

    @classmethod
    def of(cls, rt: Runtime, account_id: int) -> Context:
        return cls(rt, account_id, rt.poller.count(account_id))

    def take_mqtt_id(self, mqtt_id: str) -> bool:
        """Claim an MQTT id for this file: False when it is taken already (adopted by
        anyone or a twin's, a lookup whatever the fleet's size) or an earlier row took it."""
        if mqtt_id in self.mqtt_ids or self.rt.mqtt_id_taken(mqtt_id):
            return False
        self.mqtt_ids.add(mqtt_id)
        return True

    def account_gateways(self) -> list[str]:
        """Serials of the account's Push3 gateways, with the file's admitted so far (read
        from the account's devices once an import, at its first meter or gateway)."""
        if self.gateways is None:
            found = self.rt.engine.devices(self.account_id, Family.GATEWAY)
            self.gateways = [d.serial for d in found]
        return self.gateways

    def took(self, device: Device) -> None:
        """A row's device is admitted: a gateway is one meters of later rows may name."""
        if catalog_model(device.model).family is Family.GATEWAY:
            self.account_gateways().append(device.serial)


GATEWAY_TAG = "gateway="


def needs_gateway(row: Fields | str) -> bool:
    """Whether the row is a simulated meter that must be placed on a Push3 gateway."""
    if isinstance(row, str) or (row.protocol or SIMULATED) != SIMULATED:
        return False
    rule = RULES.get(row.model)
    return rule is not None and rule.on_gateway


def place(ctx: Context, device: Device) -> Device | str:
    """A meter that sits on a Push3 gateway's bus, on its gateway: the one its tag
    `gateway=<serial>` names, or else the account's only one (with the file's gateways);
    refused when it has none or several, or the tag names none of the account's."""
    rule = RULES.get(device.model)
    if not device.simulated or rule is None or not rule.on_gateway:
        return device
    gateways = ctx.account_gateways()
    named = [t[len(GATEWAY_TAG) :].strip() for t in device.tags if t.startswith(GATEWAY_TAG)]
    tags = tuple(t for t in device.tags if not t.startswith(GATEWAY_TAG))
    if len(named) > 1:
        return "tags: gateway= given more than once"
    if named:
        gateway = named[0]
        if gateway not in gateways:
            return f"tags: gateway={gateway} is not a PUSH3 gateway of this account"
    elif len(gateways) == 1:
        gateway = gateways[0]
    else:
        have = "no PUSH3 gateway" if not gateways else f"{len(gateways)} PUSH3 gateways"
        return f"tags: the account has {have}: name the meter's with the tag gateway=<serial>"
    return replace(device, tags=tags, attrs={**device.attrs, "gateway": gateway})


Build = Callable[[Fields, int, float], Device | str]
Admit = Callable[[Context, Device], Awaitable[str | None]]


def _device(
    row: Fields, account_id: int, now: float, model: str, serial: str,
    attrs: Mapping[str, str], default_tags: tuple[str, ...], simulated: bool,
) -> Device:  # fmt: skip
    tags = row.tags or default_tags
    return Device(
        0, account_id, serial, model, row.name or serial, now, tags, dict(attrs), simulated
    )


def _simulated(row: Fields, account_id: int, now: float) -> Device | str:
    if row.address or row.pin:
        return "address: only a real device has one (give its protocol)"
    if row.model not in CATALOG:
        return f"model: unknown model {row.model!r}"
    rule = RULES.get(row.model)
    if rule is None:
        return f"model: {row.model} is a real device only (give its protocol and address)"
    if not rule.pattern.match(row.serial):
        return SERIAL_REFUSED
    serial = rule.stored(row.serial)
    return _device(row, account_id, now, row.model, serial, rule.attrs(), (), True)


def _shelly(protocol: str) -> Build:
    proto = PROTOCOLS[protocol]

    def build(row: Fields, account_id: int, now: float) -> Device | str:
        if row.model not in ("", proto.model):
            return f"model: a {protocol} device is {proto.model}"
        if not MQTT_ID.match(row.address):
            return "address: the device's MQTT id, one topic level (e.g. shellyplug-A1B2C3)"
        if row.pin:
            return "pin: only a smart-MAIC meter has one"
        mqtt_id = canonical_mqtt_id(proto, row.address)  # as its topics spell it
        serial = row.serial or mqtt_id
        if not MQTT_ID.match(serial):
            return SERIAL_REFUSED
        attrs = {"protocol": protocol, "mqtt_id": mqtt_id}
        return _device(row, account_id, now, proto.model, serial, attrs, ("mqtt",), False)

    return build


async def _admit_mqtt(ctx: Context, device: Device) -> str | None:
    if ctx.rt.mqtt is None:
        return NO_MQTT
    return None if ctx.take_mqtt_id(device.attrs["mqtt_id"]) else ADDRESS_REFUSED


def _meter(row: Fields, account_id: int, now: float) -> Device | str:
    model = row.model or "D101"
    if model not in DEFAULT_VERSION:
        return f"model: a smart-maic meter is one of {', '.join(DEFAULT_VERSION)}"
    if not DEVID.match(row.serial):
        return SERIAL_REFUSED
    if not URL.match(row.address) or len(row.address) > 500:
        return "address: the meter's http:// or https:// URL"
    if not PIN.match(row.pin):
        return "pin: the meter's 6-digit PIN"
    attrs = {"url": row.address, "devpass": row.pin, "version": DEFAULT_VERSION[model]}
    return _device(row, account_id, now, model, row.serial, attrs, ("polled",), False)


def meters_refused(most: int) -> str:
    """A meter row's refusal past the account's cap on polled meters."""
    return f"address: the account would poll more than {most} meters (this server's most)"


async def _admit_meter(ctx: Context, device: Device) -> str | None:
    try:
        await ctx.rt.poller.guard.check(device.attrs["url"])
    except InvalidInput as err:
        return "address: " + err.message.removeprefix("url: ")
    most = ctx.rt.settings.meter_max_per_account
    if ctx.meters >= most:
        return meters_refused(most)
    ctx.meters += 1
    return None


async def _free(ctx: Context, device: Device) -> str | None:
    return None


@dataclass(frozen=True)
class Kind:
    """How rows of one protocol become devices, and what the server must have for them."""

    build: Build
    admit: Admit = _free


KINDS: dict[str, Kind] = {
    SIMULATED: Kind(_simulated),  # the runtime gives each twin a free MQTT id
    "shelly-gen1": Kind(_shelly("shelly-gen1"), _admit_mqtt),
    "shelly-gen2": Kind(_shelly("shelly-gen2"), _admit_mqtt),
    "smart-maic": Kind(_meter, _admit_meter),
}
