"""One DeviceLink in front of several: polled and MQTT devices go to their link, the rest
in-process."""

from __future__ import annotations

from switchgear.core.model import Command, CommandResult
from switchgear.core.ports import EventSink, SimAction
from switchgear.links.fleetlink import FleetLink
from switchgear.links.memory import MemoryLink
from switchgear.links.meterpoll import MeterPoller
from switchgear.links.mqtt import MqttLink


class LinkRouter:
    """Routes each device's traffic to the link that reaches it."""

    def __init__(
        self,
        memory: MemoryLink,
        poller: MeterPoller,
        mqtt: MqttLink | None = None,
        fleet: FleetLink | None = None,
    ):
        self.memory = memory
        self.poller = poller
        self.mqtt = mqtt
        self.fleet = fleet  # simulated devices served by fleet processes

    def _remote(self, device_id: int) -> MeterPoller | MqttLink | FleetLink | None:
        if self.poller.manages(device_id):
            return self.poller
        if self.mqtt is not None and self.mqtt.manages(device_id):
            return self.mqtt
        if self.fleet is not None and self.fleet.manages(device_id):
            return self.fleet
        return None

    def attach(self, sink: EventSink) -> None:
        self.memory.attach(sink)
        self.poller.attach(sink)
        if self.mqtt is not None:
            self.mqtt.attach(sink)
        if self.fleet is not None:
            self.fleet.attach(sink)

    async def send(self, device_id: int, command: Command) -> CommandResult:
        remote = self._remote(device_id)
        if remote is not None:
            return await remote.send(device_id, command)
        return await self.memory.send(device_id, command)

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        if self._remote(device_id) is not None:
            return None
        return self.memory.send_now(device_id, command)

    async def simulate(self, device_id: int, action: SimAction) -> None:
        remote = self._remote(device_id)
        if remote is not None:
            await remote.simulate(device_id, action)
        else:
            await self.memory.simulate(device_id, action)

    def timeout_for(self, device_id: int) -> float | None:
        return self.poller.timeout_for(device_id)
