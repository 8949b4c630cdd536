"""A fleet on a manual clock that records every event and NVRAM write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchgear.core.clock import VirtualClock
from switchgear.core.model import Device, DeviceEvent, Json, StatusKind
from switchgear.core.scheduler import Scheduler
from switchgear.devices.fleet import Fleet
from switchgear.devices.twin import Twin

T0 = 1_750_000_000.0


@dataclass
class Bench:
    clock: VirtualClock
    scheduler: Scheduler
    fleet: Fleet
    events: list[DeviceEvent] = field(default_factory=list)
    nvram: dict[int, Json] = field(default_factory=dict)

    def add(self, model: str = "SHPLG-1", device_id: int = 1, nvram: Any = None) -> Twin:
        device = Device(device_id, 1, f"SN{device_id}", model, "test", T0)
        return self.fleet.add(device, nvram)

    async def advance(self, seconds: float) -> None:
        await self.scheduler.advance(seconds)

    def relay_events(self, reason: str | None = None) -> list[DeviceEvent]:
        return [
            e for e in self.events
            if e.kind is StatusKind.RELAY and (reason is None or e.reason == reason)
        ]  # fmt: skip


def make_bench(speed: float = 0) -> Bench:
    clock = VirtualClock(start=T0, speed=speed)
    scheduler = Scheduler(clock)
    events: list[DeviceEvent] = []
    nvram: dict[int, Json] = {}
    fleet = Fleet(clock, scheduler, events.append, lambda i, build: nvram.__setitem__(i, build()))
    return Bench(clock, scheduler, fleet, events, nvram)
