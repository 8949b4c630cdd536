"""The domain model: accounts, devices, reported state, commands, status records."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias, TypeVar

Json: TypeAlias = Any  # a JSON-able value: None, bool, int, float, str, list, dict
JsonObject: TypeAlias = Mapping[str, Json]

_ID_ALPHABET = string.ascii_letters + string.digits
# random bytes -> alphabet (the 8 values past 248 favour 8 letters slightly: not a secret)
_ID_TABLE = bytes.maketrans(bytes(range(256)), (_ID_ALPHABET * 5)[:256].encode())


def plain(obj: Any) -> Any:
    """Dataclasses as nested dicts: `dataclasses.asdict` without its deep copies.

    Values are immutable here (frozen dataclasses, enums, numbers, strings), so the
    copies `asdict` makes cost time and buy nothing; on the command path they did.
    """
    if obj is None or isinstance(obj, (str, int, float)):  # most values: nothing to do
        return obj
    cls = type(obj)
    if hasattr(cls, "__dataclass_fields__"):
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
        return {name: plain(getattr(obj, name)) for name in names}
    if cls is tuple or cls is list:
        return cls(plain(v) for v in obj)
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    return obj


_FIELDS: dict[type, tuple[str, ...]] = {}


_T = TypeVar("_T")


class _Factory:
    """The default of a field built per record (shown as dataclasses show it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: type[_T]) -> type[_T]:
    """A frozen, slotted dataclass whose `__init__` sets each slot through its descriptor.

    The `__init__` dataclasses writes for a frozen class calls `object.__setattr__` per
    field, twice the cost of the descriptor; the hot records are built a dozen times per
    command and once per status. Same signature, defaults and immutability.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init needs a frozen, slotted dataclass, not {cls.__name__}")
    args, lines = [], []
    env: dict[str, Any] = {"_FACTORY": _FACTORY}
    for f in fields(cls):  # type: ignore[arg-type]
        name = f.name
        env[f"_set_{name}"] = cls.__dict__[name].__set__  # the slot's member descriptor
        if f.default is not MISSING:
            env[f"_default_{name}"] = f.default
            args.append(f"{name}=_default_{name}")
        elif f.default_factory is not MISSING:
            env[f"_factory_{name}"] = f.default_factory
            args.append(f"{name}=_FACTORY")
            lines.append(f"    if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            args.append(name)
        lines.append(f"    _set_{name}(self, {name})")
    exec(f"def __init__(self, {', '.join(args)}):\n" + "\n".join(lines), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def short_id(n: int = 9) -> str:
    """A short random id like the status ids real clouds use ("B1OXRJPGm").

    Not a secret (statuses are found by device and time, behind ownership checks), so
    the fast generator serves; 62^9 values make a collision in one device's history
    vanishingly rare.
    """
    return random.randbytes(n).translate(_ID_TABLE).decode()


class Family(StrEnum):
    """What kind of thing a device is, vendor-neutral."""

    PLUG = "plug"
    STRIP = "strip"
    LOAD_CONTROLLER = "load_controller"
    METER = "meter"
    GATEWAY = "gateway"


class PowerOn(StrEnum):
    """The relay state a channel takes when the device boots."""

    OFF = "off"
    ON = "on"
    LAST = "last"


class Action(StrEnum):
    ON = "on"
    OFF = "off"
    TOGGLE = "toggle"


class CommandState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        return self in (CommandState.DONE, CommandState.FAILED, CommandState.TIMED_OUT)


class StatusKind(StrEnum):
    """The kinds of status record a device reports (as the power controller names them)."""

    UPDATE = "update"  # periodic or requested readings
    RELAY = "relay"  # a relay changed
    TRIGGER = "trigger"  # a protection or trigger fired
    FUNCTION = "function"  # the device's answer to a command or configuration
    CONNECTION = "connection"  # online/offline


ROLE_TENANT = "tenant"
ROLE_OPERATOR = "operator"
ROLES = (ROLE_TENANT, ROLE_OPERATOR)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    name: str
    created_at: float
    role: str = "tenant"  # ROLE_TENANT or ROLE_OPERATOR (may do what affects every tenant)

    @property
    def operator(self) -> bool:
        return self.role == ROLE_OPERATOR


MAX_TAG = 100  # characters in one tag: every tag a device carries can be selected by


@dataclass(frozen=True, slots=True)
class Device:
    """A registry row: who owns which device of which model."""

    id: int
    account_id: int
    serial: str
    model: str  # catalogue code, e.g. "SHPLG-1"
    name: str
    created_at: float
    tags: tuple[str, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)  # per-face identifiers and facts
    simulated: bool = True


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Per-relay settings a user can change (all optional in a patch)."""

    power_on: PowerOn = PowerOn.OFF
    auto_off_s: float = 0.0  # 0 = disabled: turn off this long after turning on
    auto_on_s: float = 0.0  # 0 = disabled: turn on this long after turning off
    max_power_w: float | None = None  # over-power cut-off; None = hardware limit only


@dataclass(frozen=True, slots=True)
class SettingsPatch:
    """A change to some channel settings; None leaves a field as it is."""

    power_on: PowerOn | None = None
    auto_off_s: float | None = None
    auto_on_s: float | None = None
    max_power_w: float | None = None
    clear_max_power: bool = False

    def apply(self, s: ChannelSettings) -> ChannelSettings:
        return replace(
            s,
            power_on=self.power_on if self.power_on is not None else s.power_on,
            auto_off_s=self.auto_off_s if self.auto_off_s is not None else s.auto_off_s,
            auto_on_s=self.auto_on_s if self.auto_on_s is not None else s.auto_on_s,
            max_power_w=None
            if self.clear_max_power
            else (self.max_power_w if self.max_power_w is not None else s.max_power_w),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class ChannelState:
    """One relay channel as last reported."""

    index: int
    on: bool
    settings: ChannelSettings = ChannelSettings()
    toggle_at: float | None = None  # due time of the pending flip, if any
    overpower: bool = False  # tripped by the over-power cut-off until switched on again
    name: str = ""
    kind: str = "relay"  # e.g. outlet, usb (strips)


@fast_init
@dataclass(frozen=True, slots=True)
class MeterReading:
    """One metering point (a channel's load or one phase)."""

    index: int
    voltage_v: float
    current_a: float
    power_w: float
    reverse_power_w: float
    power_factor: float
    frequency_hz: float
    energy_wh: float
    reverse_energy_wh: float


@fast_init
@dataclass(frozen=True, slots=True)
class DeviceState:
    """Everything a device reports about itself: the engine keeps the last one as the shadow."""

    device_id: int
    ts: float
    online: bool
    channels: tuple[ChannelState, ...] = ()
    meters: tuple[MeterReading, ...] = ()
    temperature_c: float | None = None
    extra: JsonObject = field(default_factory=dict)  # family-specific readings and settings

    def to_json(self) -> dict[str, Json]:
        return plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, d: Mapping[str, Json]) -> DeviceState:
        channels = tuple([_channel(c) for c in d.get("channels", ())])
        meters = tuple([MeterReading(**m) for m in d.get("meters", ())])
        return cls(d["device_id"], d["ts"], d["online"], channels, meters,
                   d.get("temperature_c"), dict(d.get("extra") or {}))  # fmt: skip


_POWER_ON = {p.value: p for p in PowerOn}  # (a lookup: an Enum call costs a microsecond)


def _channel(c: Mapping[str, Json]) -> ChannelState:
    """A channel of a state read back (every report a server hears has one or more)."""
    s = c["settings"]
    power_on = _POWER_ON.get(s["power_on"]) or PowerOn(s["power_on"])
    return ChannelState(**{**c, "settings": ChannelSettings(**{**s, "power_on": power_on})})


# --- commands -------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Switch:
    """Switch one channel (or all when channel is None), now or after `delay`, for `duration`."""

    action: Action
    channel: int | None = 0
    delay: float = 0.0
    duration: float | None = None  # then flip back

    name = "switch"


@dataclass(frozen=True, slots=True)
class Configure:
    """Change channel settings (one channel, or all when channel is None)."""

    patch: SettingsPatch
    channel: int | None = None

    name = "configure"


@dataclass(frozen=True, slots=True)
class Refresh:
    """Ask the device for a fresh `update` status."""

    name = "refresh"


@dataclass(frozen=True, slots=True)
class FirmwareCommand:
    """A family-specific command the twin's firmware interprets (FFR, meter settings, ...)."""

    name: str
    params: JsonObject = field(default_factory=dict)


Command = Switch | Configure | Refresh | FirmwareCommand


def command_params(cmd: Command) -> dict[str, Json]:
    """The command's parameters as JSON, for the command log (passwords redacted)."""
    if isinstance(cmd, FirmwareCommand):
        return {k: _redacted(v) if "password" not in k.lower() else "[redacted]"
                for k, v in cmd.params.items()}  # fmt: skip
    return plain(cmd)  # type: ignore[no-any-return]


def _redacted(value: Json) -> Json:
    if isinstance(value, Mapping):
        return {k: "[redacted]" if "password" in k.lower() else _redacted(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


@fast_init
@dataclass(frozen=True, slots=True)
class CommandResult:
    """What the device answered."""

    ok: bool
    codes: tuple[int, ...] = ()  # device response codes (power controller style)
    data: JsonObject = field(default_factory=dict)
    error: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command's lifecycle: queued -> sent -> done | failed | timed_out."""

    id: str
    device_id: int
    account_id: int
    name: str
    params: JsonObject
    state: CommandState
    created_at: float
    updated_at: float
    result: JsonObject | None = None
    error: str | None = None

    def unreachable(self) -> bool:
        """The device never took it (offline, or no answer in time), as opposed to
        answered, with codes or not."""
        return self.state is CommandState.TIMED_OUT or (
            self.state is CommandState.FAILED and self.result is None
        )


# --- events and history ---------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something a device reports: the engine turns it into a status record and a shadow."""

    device_id: int
    ts: float
    kind: StatusKind
    reason: str
    data: JsonObject
    state: DeviceState
    channel: int | None = None
    record: bool = True  # False: update the shadow only, no history record
    topic: str | None = None  # also published on this bus topic (e.g. a Push3 channel)
    record_id: ClassVar[str | None] = None  # see SharedEvent


@dataclass(frozen=True, slots=True)
class SharedEvent(DeviceEvent):
    """An event every worker hears, recorded by one of them (`record` False here): each
    names the record by the same id, so a live event points at its history entry."""

    record_id: str | None = None  # type: ignore[misc]


@fast_init
@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One entry of a device's history."""

    id: str
    device_id: int
    ts: float
    kind: StatusKind
    reason: str
    data: JsonObject
    channel: int | None = None
    account_id: int | None = None  # the owner when it was recorded (account-wide queries)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    records: tuple[StatusRecord, ...]
    next_cursor: str | None
