"""In-process link between the engine and the simulated fleet (the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from switchgear.core.clock import Clock
from switchgear.core.model import Command, CommandResult, DeviceEvent, Json
from switchgear.core.ports import EventSink, SimAction
from switchgear.core.scheduler import Scheduler
from switchgear.devices.fleet import Fleet
from switchgear.devices.gateway import DEFAULT_MAX_DELAY_S
from switchgear.errors import DeviceOffline

NvramSink = Callable[[int, Json], None]


class MemoryLink:
    """Delivers commands straight to twins in this process; events come back synchronously."""

    def __init__(
        self,
        clock: Clock,
        scheduler: Scheduler,
        nvram_sink: NvramSink,
        gateway_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        self._sinks: list[EventSink] = []
        self.fleet = Fleet(clock, scheduler, self._deliver, nvram_sink, gateway_delay_s)
        self.unresponsive: set[int] = set()  # fault injection: these devices never answer

    def attach(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def _deliver(self, event: DeviceEvent) -> None:
        for sink in self._sinks:
            sink(event)

    async def send(self, device_id: int, command: Command) -> CommandResult:
        twin = self.fleet.get(device_id)
        if twin is None:
            raise DeviceOffline("device is not connected")
        if device_id in self.unresponsive:
            await asyncio.Event().wait()  # never answers: the engine times the command out
        return twin.handle(command)

    async def simulate(self, device_id: int, action: SimAction) -> None:
        self.fleet.apply(device_id, action)

    def timeout_for(self, device_id: int) -> float | None:
        return None
