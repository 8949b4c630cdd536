"""What the server keeps for each real MQTT device: its reported state, timers and waiters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from switchgear.core.model import CommandResult, Device, Json
from switchgear.core.scheduler import Timer
from switchgear.links.shelly import ShellyProtocol


@dataclass
class Pending:
    """A switch the server runs for the device: due time, target, status reason."""

    due: float
    on: bool
    reason: str  # "timer" (a delayed switch) or "auto" (a flip-back)
    then_s: float | None = None  # a delayed timed switch: flip back this long after
    timer: Timer | None = None

    def to_json(self) -> dict[str, Json]:
        return {"due": self.due, "on": self.on, "reason": self.reason, "then_s": self.then_s}


@dataclass(eq=False)
class Waiter:
    """A command waiting for the device to report the relay it asked for."""

    on: bool
    reason: str
    fut: asyncio.Future[None]
    rid: str | None = None  # (group mode) the id of the record this worker writes


@dataclass
class Intent:
    """(group mode) A switch another worker commanded: it records the change."""

    on: bool
    reason: str
    rid: str
    at: float  # monotonic, to forget one whose report never came


@dataclass
class Adopted:
    """What the server keeps for one MQTT device: its reports, energy sum and timers."""

    device: Device
    proto: ShellyProtocol
    online: bool = False
    gone: bool = False  # its last will came: only its own `online` = `true` brings it back
    on: bool = False
    overpower: bool = False
    power_w: float = 0.0
    voltage_v: float = 0.0
    current_a: float = 0.0
    energy_base_wh: float = 0.0  # counted before the device's last reboot
    counter_wh: float = 0.0  # the device's own counter, as last reported
    pending: Pending | None = None
    recorded_power: float | None = None
    recorded_at: float = 0.0
    waiters: list[Waiter] = field(default_factory=list)
    calls: set[asyncio.Future[CommandResult]] = field(default_factory=set)  # RPCs unanswered
    intents: list[Intent] = field(default_factory=list)

    @property
    def mqtt_id(self) -> str:
        return self.device.attrs["mqtt_id"]

    def nvram(self) -> dict[str, Json]:
        return {"on": self.on, "energy_base_wh": self.energy_base_wh,
                "counter_wh": self.counter_wh,
                "pending": self.pending.to_json() if self.pending else None}  # fmt: skip
