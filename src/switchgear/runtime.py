"""The services of one server process, wired once: store, clock, engine, fleet, auth."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from switchgear.auth.service import Auth, secret_key
from switchgear.core.bus import MemoryBus
from switchgear.core.clock import VirtualClock
from switchgear.core.engine import Engine
from switchgear.core.journal import Journal
from switchgear.core.model import Device
from switchgear.core.ports import SimAction, Store
from switchgear.core.scheduler import Scheduler
from switchgear.errors import Conflict, InvalidInput
from switchgear.links.memory import MemoryLink
from switchgear.links.meterpoll import MeterPoller
from switchgear.links.router import LinkRouter
from switchgear.settings import Settings
from switchgear.storage import open_store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a face needs, built by `start()` and torn down by `stop()`."""

    settings: Settings
    store: Store
    clock: VirtualClock
    scheduler: Scheduler
    journal: Journal
    bus: MemoryBus
    link: MemoryLink
    poller: MeterPoller
    engine: Engine
    auth: Auth
    extensions: dict[str, Any] = field(default_factory=dict)  # per-face state (quotas, ...)

    @classmethod
    async def start(cls, settings: Settings, store: Store | None = None) -> Runtime:
        """Open the store, resume the clock, load the registry and boot the fleet."""
        if settings.link != "memory":
            raise InvalidInput(f"link {settings.link!r} is not available yet", field="link")
        store = store or open_store(settings.database_url)
        await store.open()
        stored_clock = await store.meta("clock")
        # The virtual clock starts at wall-clock time; a database whose clock already ran
        # ahead (a fast demo) resumes from there so history never goes backwards.
        start = max(time.time(), float(stored_clock or 0.0))
        clock = VirtualClock(start=start, speed=settings.speed)
        scheduler = Scheduler(clock)
        journal = Journal(store, clock)
        bus = MemoryBus()
        link = MemoryLink(clock, scheduler, journal.put_nvram)
        poller = MeterPoller(clock, scheduler)
        engine = Engine(
            store, LinkRouter(link, poller), bus, clock, journal, settings.command_timeout_s
        )
        key = await secret_key(store, settings.secret_key)
        auth = Auth(store, clock, key)
        await auth.load()
        rt = cls(settings, store, clock, scheduler, journal, bus, link, poller, engine, auth)
        devices = await engine.load()
        nvram = await store.nvram()
        for device in devices:
            if device.simulated:
                link.fleet.add(device, nvram.get(device.id))  # boots: a restart is a power cycle
            elif "url" in device.attrs:
                poller.add(device)
        journal.start()
        scheduler.start()
        await journal.flush()
        log.info("runtime started: %d devices, clock speed %s", len(devices), settings.speed)
        return rt

    async def stop(self) -> None:
        await self.poller.close()
        await self.scheduler.stop()
        await self.journal.stop()
        await self.store.close()

    async def add_device(self, device: Device) -> Device:
        """Register a device; a simulated one gets its twin, which boots and reports."""
        for d in self.engine.all_devices():
            if d.serial == device.serial and d.model == device.model:
                raise Conflict(f"a device with serial {device.serial!r} exists", field="serial")
        stored = await self.engine.add_device(device)
        if stored.simulated:
            self.link.fleet.add(stored, None)
        elif "url" in stored.attrs:
            self.poller.add(stored)
        await self.journal.flush()
        return stored

    async def simulate(self, account_id: int, device_id: int, action: SimAction) -> None:
        """A physical-world change to one of the account's simulated devices."""
        device = self.engine.device(account_id, device_id)
        await self.link.simulate(device.id, action)
        await self.journal.flush()

    async def set_grid(
        self, account_id: int, frequency_hz: float | None, voltage_v: float | None
    ) -> None:
        self.link.fleet.set_grid(account_id, frequency_hz=frequency_hz, voltage_v=voltage_v)
        await self.journal.flush()

    async def advance(self, seconds: float) -> float:
        """Jump a manual clock forward, firing every timer on the way (Conflict otherwise)."""
        if not self.clock.manual:
            raise Conflict("the clock is not manual (start with --speed 0)", field="seconds")
        now = await self.scheduler.advance(seconds)
        await self.journal.flush()
        return now
