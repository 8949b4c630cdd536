"""In-process link between the engine and the simulated fleet (the embedded default)."""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass

from switchgear.core.clock import Clock
from switchgear.core.model import Command, CommandResult, DeviceEvent, DeviceState
from switchgear.core.ports import EventSink, SimAction
from switchgear.core.scheduler import Scheduler
from switchgear.devices.fleet import Fleet
from switchgear.devices.gateway import DEFAULT_MAX_DELAY_S
from switchgear.devices.twin import NvramSink
from switchgear.errors import DeviceOffline

SEEN_PER_DEVICE = 64  # message ids a device remembers to drop duplicates


@dataclass(frozen=True)
class LinkFault:
    """How a device's connection misbehaves (fault injection for reliability tests).

    `delay_s`: the command reaches the device this long (wall clock) after it was sent —
    if the engine gives up first, it never arrives. `duplicate`: it arrives twice (the
    device drops the copy by message id). `lost`: it never arrives. `drop_after`: the
    device goes off the network right after applying it, before answering.
    """

    delay_s: float = 0.0
    duplicate: bool = False
    lost: bool = False
    drop_after: bool = False


NO_FAULT = LinkFault()


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
        self.faults: dict[int, LinkFault] = {}
        self._ids = itertools.count()
        self._seen: dict[int, OrderedDict[int, CommandResult]] = {}

    def attach(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def _deliver(self, event: DeviceEvent) -> None:
        for sink in self._sinks:
            sink(event)

    async def send(self, device_id: int, command: Command) -> CommandResult:
        twin = self.fleet.get(device_id)
        if twin is None:
            raise DeviceOffline("device is not connected")
        fault = self.faults.get(device_id, NO_FAULT)
        if fault.lost:
            await asyncio.Event().wait()  # never answers: the engine times the command out
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)  # cancelled with the command: never arrives
        if fault.duplicate:  # the copy carries the same message id: the device drops it
            message_id = next(self._ids)
            self._deliver_once(device_id, message_id, command)
            result = self._deliver_once(device_id, message_id, command)
        else:
            result = twin.handle(command)
        if fault.drop_after:
            twin.set_online(False)
            raise DeviceOffline("device went offline before answering")
        return result

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        """A twin without an injected fault answers at once (no timer for the engine to set)."""
        twin = self.fleet.get(device_id)
        if twin is None or device_id in self.faults:
            return None  # `send` reports the missing device or plays the fault
        return twin.handle(command)

    def reading(self, device_id: int) -> DeviceState | None:
        """The twin's readings this instant, if the cloud could ask it now (online, no
        injected fault); nothing is reported or recorded."""
        twin = self.fleet.get(device_id)
        if twin is None or not twin.online or device_id in self.faults:
            return None
        return twin.snapshot()

    def _deliver_once(self, device_id: int, message_id: int, command: Command) -> CommandResult:
        """The device's side: a message id it has seen gets the same answer, not a rerun."""
        seen = self._seen.setdefault(device_id, OrderedDict())
        if message_id in seen:
            return seen[message_id]
        twin = self.fleet.get(device_id)
        if twin is None:
            raise DeviceOffline("device is not connected")
        result = twin.handle(command)
        seen[message_id] = result
        if len(seen) > SEEN_PER_DEVICE:
            seen.popitem(last=False)
        return result

    async def simulate(self, device_id: int, action: SimAction) -> None:
        self.fleet.apply(device_id, action)

    def timeout_for(self, device_id: int) -> float | None:
        return None
