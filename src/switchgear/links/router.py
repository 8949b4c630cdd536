"""One DeviceLink in front of several: polled devices go to their poller, the rest in-process."""

from __future__ import annotations

from switchgear.core.model import Command, CommandResult
from switchgear.core.ports import EventSink, SimAction
from switchgear.links.memory import MemoryLink
from switchgear.links.meterpoll import MeterPoller


class LinkRouter:
    """Routes each device's traffic to the link that reaches it."""

    def __init__(self, memory: MemoryLink, poller: MeterPoller) -> None:
        self.memory = memory
        self.poller = poller

    def attach(self, sink: EventSink) -> None:
        self.memory.attach(sink)
        self.poller.attach(sink)

    async def send(self, device_id: int, command: Command) -> CommandResult:
        if self.poller.manages(device_id):
            return await self.poller.send(device_id, command)
        return await self.memory.send(device_id, command)

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        if self.poller.manages(device_id):
            return None
        return self.memory.send_now(device_id, command)

    async def simulate(self, device_id: int, action: SimAction) -> None:
        if self.poller.manages(device_id):
            await self.poller.simulate(device_id, action)
        else:
            await self.memory.simulate(device_id, action)

    def timeout_for(self, device_id: int) -> float | None:
        return self.poller.timeout_for(device_id)
