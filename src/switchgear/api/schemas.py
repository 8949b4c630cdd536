"""Wire models of the native API (pydantic), and renderers from core objects."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import (
    ChannelState,
    CommandRecord,
    Device,
    DeviceState,
    MeterReading,
    PowerOn,
    StatusRecord,
)
from switchgear.storedtext import NUL, REFUSED

Finite = Field(allow_inf_nan=False)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- requests ---------------------------------------------------------------


def _no_nul(value: str) -> str:
    if NUL in value:  # PostgreSQL keeps no NUL in text: refused here, not by the store
        raise PydanticCustomError("nul", f"text {REFUSED}")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]  # a text field the store keeps


class SwitchRequest(Strict):
    action: Literal["on", "off", "toggle"]
    delay: float = Field(strict=True, default=0.0, ge=0, le=31_536_000, allow_inf_nan=False)
    duration: float | None = Field(
        strict=True, default=None, gt=0, le=31_536_000, allow_inf_nan=False
    )


class SettingsRequest(Strict):
    channel: int | None = Field(strict=True, default=None, ge=0)
    power_on: PowerOn | None = None
    auto_off_s: float | None = Field(
        strict=True, default=None, ge=0, le=31_536_000, allow_inf_nan=False
    )
    auto_on_s: float | None = Field(
        strict=True, default=None, ge=0, le=31_536_000, allow_inf_nan=False
    )
    max_power_w: float | None = Field(
        strict=True, default=None, gt=0, le=1_000_000, allow_inf_nan=False
    )


class TokenRequest(Strict):
    email: str | None = None
    password: str | None = None
    expires_in: float | None = Field(
        strict=True, default=None, gt=0, le=10 * 31_536_000, allow_inf_nan=False
    )
    desc: Text = Field(default="", max_length=200)


class MeterRequest(Strict):
    """A real smart-MAIC meter to poll: its address, device id and PIN."""

    url: str = Field(
        pattern=r"^https?://[^\s]+$",
        max_length=500,
        description="the meter's address; it must resolve into the server's allowed networks",
    )
    # checked in the route: a malformed devid and a taken one get the same answer
    devid: str = Field(max_length=100, description="the meter's 10-digit device id")
    devpass: str = Field(pattern=r"^\d{6}$")
    model: Literal["D101", "D103"] = "D101"
    version: Literal["standard", "extended"] | None = None
    name: Text = Field(default="", max_length=200)


MQTT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"  # one topic level: no `/`, `+`, `#`


def _topic_level(value: str) -> str:
    if not re.match(MQTT_ID, value):
        raise PydanticCustomError(
            "topic_level",
            "one MQTT topic level: 1 to 64 letters, digits, '-', '_', '.' or ':'"
            " (e.g. shellyplug-A1B2C3)",
        )
    return value


TopicLevel = Annotated[
    str, AfterValidator(_topic_level), WithJsonSchema({"type": "string", "pattern": MQTT_ID})
]


class AdoptRequest(Strict):
    """A real Shelly that already talks to the server's broker, by its MQTT id."""

    protocol: Literal["shelly-gen1", "shelly-gen2"]
    mqtt_id: TopicLevel = Field(examples=["shellyplug-A1B2C3"])
    name: Text = Field(default="", max_length=200)
    serial: TopicLevel | None = None


class OnlineRequest(Strict):
    online: bool = Field(strict=True)


class LoadRequest(Strict):
    channel: int = Field(strict=True, default=0, ge=0)
    watts: float | None = Field(
        strict=True, default=None, ge=-1_000_000, le=1_000_000, allow_inf_nan=False
    )
    power_factor: float = Field(strict=True, default=1.0, gt=0, le=1, allow_inf_nan=False)
    model: dict[str, Any] | None = None  # a load model description (devices/physics.py)


class GridRequest(Strict):
    frequency_hz: float | None = Field(strict=True, default=None, ge=40, le=70, allow_inf_nan=False)
    voltage_v: float | None = Field(strict=True, default=None, ge=0, le=500, allow_inf_nan=False)
    duration_s: float | None = Field(strict=True,
        default=None, gt=0, le=31_536_000, allow_inf_nan=False,
        description="back to nominal after this long (a grid event); none = stays",
    )  # fmt: skip


class AdvanceRequest(Strict):
    seconds: float = Field(strict=True, gt=0, le=10 * 31_536_000, allow_inf_nan=False)


# --- responses --------------------------------------------------------------


class ChannelOut(BaseModel):
    index: int
    name: str
    kind: str
    on: bool
    toggle_at: str | None
    overpower: bool
    settings: dict[str, Any]


class MeterOut(BaseModel):
    index: int
    voltage_v: float
    current_a: float
    power_w: float
    reverse_power_w: float
    power_factor: float
    frequency_hz: float
    energy_wh: float
    reverse_energy_wh: float


class DeviceOut(BaseModel):
    id: int
    serial: str
    name: str
    family: str
    model: str
    tags: list[str]
    online: bool
    reported_at: str | None
    channels: list[ChannelOut]
    meters: list[MeterOut]
    temperature_c: float | None
    extra: dict[str, Any]


class CommandOut(BaseModel):
    id: str
    device_id: int
    name: str
    params: dict[str, Any]
    state: str
    created_at: str | None
    updated_at: str | None
    result: dict[str, Any] | None
    error: str | None


class StatusOut(BaseModel):
    id: str
    device_id: int
    ts: str | None
    kind: str
    reason: str
    channel: int | None
    data: dict[str, Any]


class HistoryOut(BaseModel):
    statuses: list[StatusOut]
    next_cursor: str | None


class TokenOut(BaseModel):
    id: str
    desc: str
    created_at: str | None
    expires_at: str | None
    revoked: bool
    token: str | None = None  # only when just created


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    role: str  # "operator" (may move the shared clock) or "tenant"


def channel_out(c: ChannelState) -> ChannelOut:
    s = c.settings
    return ChannelOut(
        index=c.index,
        name=c.name,
        kind=c.kind,
        on=c.on,
        toggle_at=iso(c.toggle_at),
        overpower=c.overpower,
        settings={
            "power_on": s.power_on.value,
            "auto_off_s": s.auto_off_s,
            "auto_on_s": s.auto_on_s,
            "max_power_w": s.max_power_w,
        },
    )


def _shown(value: float, digits: int) -> float:
    """A reading rounded for the wire; a value that rounds to zero is 0.0, never -0.0
    (a real meter's "-0", or -0.001 W of noise, is no reverse flow)."""
    return round(value, digits) + 0.0


def meter_out(m: MeterReading) -> MeterOut:
    return MeterOut(
        index=m.index,
        voltage_v=_shown(m.voltage_v, 2),
        current_a=_shown(m.current_a, 3),
        power_w=_shown(m.power_w, 2),
        reverse_power_w=_shown(m.reverse_power_w, 2),
        power_factor=_shown(m.power_factor, 3),
        frequency_hz=_shown(m.frequency_hz, 3),
        energy_wh=_shown(m.energy_wh, 3),
        reverse_energy_wh=_shown(m.reverse_energy_wh, 3),
    )


def device_out(d: Device, state: DeviceState) -> DeviceOut:
    return DeviceOut(
        id=d.id,
        serial=d.serial,
        name=d.name,
        family=catalog_model(d.model).family.value,
        model=d.model,
        tags=list(d.tags),
        online=state.online,
        reported_at=iso(state.ts) if state.ts else None,
        channels=[channel_out(c) for c in state.channels],
        meters=[meter_out(m) for m in state.meters],
        temperature_c=state.temperature_c,
        extra=dict(state.extra),
    )


def command_out(r: CommandRecord) -> CommandOut:
    return CommandOut(
        id=r.id,
        device_id=r.device_id,
        name=r.name,
        params=dict(r.params),
        state=r.state.value,
        created_at=iso(r.created_at),
        updated_at=iso(r.updated_at),
        result=dict(r.result) if r.result is not None else None,
        error=r.error,
    )


def status_out(r: StatusRecord) -> StatusOut:
    return StatusOut(
        id=r.id,
        device_id=r.device_id,
        ts=iso(r.ts),
        kind=r.kind.value,
        reason=r.reason,
        channel=r.channel,
        data=dict(r.data),
    )
