"""The services of one server process, wired once: store, clock, engine, fleet, auth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from switchgear import gctune
from switchgear.auth.passwords import HashPool
from switchgear.auth.service import Auth, secret_key
from switchgear.core.anchor import MANUAL_REFUSED, server_clock
from switchgear.core.bus import MemoryBus, NoPeers
from switchgear.core.catalog import MODELS
from switchgear.core.clock import VirtualClock
from switchgear.core.counters import SERVER_CLOCK_SCOPES, Counters, MemoryCounters
from switchgear.core.engine import Engine
from switchgear.core.journal import Journal
from switchgear.core.model import Device, DeviceState, Family, Json
from switchgear.core.ports import Peers, SimAction, Store
from switchgear.core.readings import project, with_readings
from switchgear.core.scheduler import Scheduler
from switchgear.errors import Conflict, InvalidCommand, InvalidInput, MqttIdTaken
from switchgear.links import twinwire
from switchgear.links.broker import from_settings, is_broker_link
from switchgear.links.fleetlink import FleetLink, presence_topic
from switchgear.links.leanmqtt import LeanTransport
from switchgear.links.memory import MemoryLink
from switchgear.links.meterlease import LEASE_CHECK_S, AdvisoryLease
from switchgear.links.meterpoll import MeterPoller
from switchgear.links.mqtt import MqttLink
from switchgear.links.mqttbus import Cluster, deployment
from switchgear.links.mqttclient import MqttTransport
from switchgear.links.netguard import NetGuard
from switchgear.links.router import LinkRouter
from switchgear.links.shelly import PROTOCOLS, canonical_mqtt_id, fold
from switchgear.links.shellygroup import Group
from switchgear.settings import Settings
from switchgear.storage import open_store
from switchgear.storage.shared import shared_counters, shared_engine

log = logging.getLogger(__name__)

COUNTERS_SWEEP_S = 60.0  # wall seconds between sweeps of ended counters
ADVANCE_STEP_S = 3600.0  # a manual clock's long jump commits every virtual hour
# after a start, the late twins boot BOOT_STEP at a time (≈ 25 ms of CPU) with a pause
# between steps, so requests wait for one step at most, not for the whole fleet
BOOT_STEP = 250
ADOPTED = "this device is adopted already"  # (the answer does not say whose)
PLACE_TRIES = 8  # stores of one registration whose new twins' MQTT ids another took meanwhile
PLUG_MODELS = tuple(m for m in MODELS if m.family is Family.PLUG)  # served by one face
BOOT_PAUSE_S = 0.002
BURST_STATUSES = 1000  # status records queued or under commit that make a burst
BOOT_WAIT_S = 2.0  # the late boot waits this long for `serving()` (an app's start) at most


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
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # background work of faces
    # set once the faces are up: the late twins' boot waits for it (BOOT_WAIT_S at most)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    mqtt: MqttLink | None = None  # real devices on a broker (`--link mqtt://...`)
    fleet_link: FleetLink | None = None  # simulated devices in `switchgear fleet` processes
    # abuse counters (throttles, quotas, PIN guesses): the database's with PostgreSQL
    counters: Counters = field(default_factory=MemoryCounters)
    peers: Peers = field(default_factory=NoPeers)  # the other API workers (on the broker)
    cluster: Cluster | None = None  # the broker connection carrying the bus and the peers
    # the `attempt`-th MQTT id a new twin may take (a seam: tests make two twins want one)
    twin_id: Callable[[Device, int], str] = twinwire.candidate
    # the simulated devices' MQTT ids, and those the store said are taken (mqtt_id_taken)
    _twin_ids: set[str] | None = None

    @classmethod
    async def start(
        cls, settings: Settings, store: Store | None = None, mqtt: MqttTransport | None = None
    ) -> Runtime:
        """Open the store, resume the clock, load the registry and boot the fleet.

        `settings.link` `mqtt://host:port` (or a transport given as `mqtt`) also connects
        the server to a broker for real devices; simulated ones stay in-process.
        """
        external = settings.fleet == "external"
        if external and not is_broker_link(settings.link):
            raise InvalidInput(
                "SWITCHGEAR_FLEET=external needs a broker: start with --link mqtt://host:port",
                field="fleet",
            )
        if external and settings.speed <= 0:
            raise InvalidInput(MANUAL_REFUSED, field="speed")
        if mqtt is None and settings.link != "memory":
            if not is_broker_link(settings.link):
                raise InvalidInput(f"link {settings.link!r} is not available", field="link")
            mqtt = LeanTransport(from_settings(settings), v5=external)  # 5: shared subs
        store = store or open_store(settings.database_url)
        await store.open()
        stored_clock = await store.meta("clock")
        # The virtual clock starts at wall-clock time; a database whose clock already ran
        # ahead (a fast demo) resumes from there so history never goes backwards.
        start = max(time.time(), float(stored_clock or 0.0))
        if external:  # one anchor in the database, read by the fleet processes too
            clock = await server_clock(store, start, settings.speed)
        else:
            clock = VirtualClock(start=start, speed=settings.speed)
        scheduler = Scheduler(clock)
        journal = Journal(store, clock)
        key = await secret_key(store, settings.secret_key)
        link = MemoryLink(clock, scheduler, journal.put_nvram, settings.push3_gateway_delay_s)
        poller = MeterPoller(clock, scheduler, guard=NetGuard(settings.meter_networks))
        # with a broker, the workers of one deployment share events, credentials, channels
        cluster, name = None, deployment(key, settings.database_url)
        if is_broker_link(settings.link):
            cluster = Cluster(from_settings(settings), name, poller.polls)
        bus = MemoryBus() if cluster is None else cluster.bus
        remote = None if mqtt is None else MqttLink(clock, scheduler, journal.put_nvram, mqtt)
        fleet_link = None
        if external:  # MQTT 5: the history is written once, by shared subscriptions
            group, client_id = f"switchgear-{name}", f"switchgear-{secrets.token_hex(6)}"
            will = (presence_topic(group, client_id), b"")  # how it takes reports: gone
            fleet_transport = LeanTransport(from_settings(settings), client_id=client_id,
                                            will=will, v5=True)  # fmt: skip
            fleet_link = FleetLink(clock, fleet_transport, settings.command_timeout_s, group=group)
        router = LinkRouter(link, poller, remote, fleet_link)
        engine = Engine(store, router, bus, clock, journal, settings.command_timeout_s)
        if fleet_link is not None:
            fleet_link.recorder = engine.record
        if remote is not None and external and cluster is not None:  # one record, one firing
            remote.join(Group(f"switchgear-{name}", engine.record, cluster.peers, store.claim))
        counters = shared_counters(store) or MemoryCounters()
        hashes = HashPool(settings.password_workers)
        auth = Auth(store, clock, key, hashes=hashes, counters=counters)
        if cluster is not None:
            cluster.bus.on_remote = engine.remote_event
            auth.join(cluster.peers)
            await cluster.start()  # before loading: no change told meanwhile is missed
        await auth.load()
        rt = cls(settings, store, clock, scheduler, journal, bus, link, poller, engine, auth)
        rt.counters = counters
        rt.spawn(rt._sweep_counters(), "counters-sweep")
        # a burst of reports (a grid step's trips) holds the collector until recorded:
        # its passes walked the records waiting for their commit (docs/architecture.md)
        rt.spawn(gctune.held_while(lambda: journal.backlog >= BURST_STATUSES), "gc-hold")
        if cluster is not None:
            rt.cluster, rt.peers = cluster, cluster.peers
            cluster.peers.on("devices.added", rt._peer_devices)
        shared = shared_engine(store)
        if shared is not None:  # one worker polls the real meters; the others follow
            poller.share(store, AdvisoryLease(shared))
            poller.heard = lambda device_id: engine.shadow(device_id).ts
            await poller.lease.keep()
            rt.spawn(rt._keep_poll_lease(), "meter-poll-lease")
        rt.spawn(auth.follow(settings.credentials_refresh_s), "auth-follow")
        rt.mqtt = remote
        if remote is not None:
            await remote.start()
        rt.fleet_link = fleet_link
        if fleet_link is not None:
            fleet_link.shadow = engine.shadow
            fleet_link.deployment = await twinwire.deployment_id(store)
            await fleet_link.start()
        later: list[Device] = []  # twins past settings.boot_inline_twins
        with gctune.paused():
            devices = await engine.load()
            nvram = await store.nvram()
            for device in devices:
                if device.simulated and fleet_link is not None:
                    await fleet_link.add(device)
                elif device.simulated and len(link.fleet) >= settings.boot_inline_twins:
                    later.append(device)
                elif device.simulated:
                    link.fleet.add(
                        device, nvram.get(device.id)
                    )  # boots: a restart is a power cycle
                elif "url" in device.attrs:
                    poller.add(device)
                elif remote is not None and "mqtt_id" in device.attrs:
                    await remote.add(device, nvram.get(device.id))
        journal.start()
        scheduler.start()
        if later:
            rt.spawn(rt._boot_later(later, nvram), "fleet-boot")
        # The boot's reports (a status per relay, each twin's NVRAM) commit in the
        # background: waiting for them kept a 100,000-device start from answering for
        # 18 s. Whatever acknowledges a command or reads history flushes first, and a
        # crash before they land boots the same twins again from the same NVRAM.
        log.info("runtime started: %d devices, clock speed %s", len(devices), settings.speed)
        return rt

    async def _sweep_counters(self) -> None:
        """Forget ended counters of the server clock's scopes (sign-ins: Auth.follow)."""
        while True:
            await asyncio.sleep(COUNTERS_SWEEP_S)
            try:
                await self.counters.sweep(SERVER_CLOCK_SCOPES, self.clock.now())
            except Exception:  # a database hiccup: the next sweep takes them
                log.warning("counters sweep failed", exc_info=True)

    async def _keep_poll_lease(self) -> None:
        """Hold the meter poll lease, or try for it, every LEASE_CHECK_S wall seconds."""
        try:
            while True:
                await asyncio.sleep(LEASE_CHECK_S)
                await self.poller.lease.keep()
        finally:
            await self.poller.lease.close()

    async def _boot_later(self, devices: list[Device], nvram: dict[int, Any]) -> None:
        """Boot the twins a start left for after it answers, BOOT_STEP at a time with the
        collector paused (requests are served between two steps), as a fleet comes back
        over the seconds after a power cut: until its twin boots a device is offline."""
        with contextlib.suppress(TimeoutError):  # the app's own start goes first
            await asyncio.wait_for(self.started.wait(), BOOT_WAIT_S)
        started = time.process_time()
        for i in range(0, len(devices), BOOT_STEP):
            with gctune.paused():
                for device in devices[i : i + BOOT_STEP]:
                    if self.link.fleet.get(device.id) is None:
                        self.link.fleet.add(device, nvram.pop(device.id, None))
            await asyncio.sleep(BOOT_PAUSE_S)
        gctune.settle()
        log.info(
            "fleet booted: %d more twins in %.1f s of CPU",
            len(devices),
            time.process_time() - started,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work of a face; it is cancelled when the runtime stops."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.poller.close()
        if self.mqtt is not None:
            await self.mqtt.close()
        if self.fleet_link is not None:
            await self.fleet_link.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.scheduler.stop()
        await self.journal.stop()
        self.auth.close()
        await self.store.close()

    async def add_device(
        self, device: Device, connect_after_s: float = 0.0, meters_most: int | None = None
    ) -> Device:
        """Register a device; a simulated one gets its twin, which boots and reports.

        `connect_after_s` delays the twin's first connection (a cellular controller
        activating its SIM): until then the device has never reported. `meters_most`:
        MetersCapped if the account would poll more meters (checked in the store's write).
        """
        # an index lookup (cost independent of the fleet); the store's unique constraint
        # stands behind it for a race between two registrations
        if self.engine.serial_taken(device.serial, device.model):
            raise Conflict(f"a device with serial {device.serial!r} exists", field="serial")
        (stored,) = await self._store_placed([device], True, meters_most)
        if stored.simulated and connect_after_s > 0:
            self.scheduler.call_later(connect_after_s, self._connect, stored)
        elif stored.simulated and self.fleet_link is not None:
            await self.fleet_link.add(stored)
            await self.fleet_link.announce(stored)
        elif stored.simulated:
            self.link.fleet.add(stored, None)
        elif "url" in stored.attrs:
            self.poller.add(stored)
        elif self.mqtt is not None and "mqtt_id" in stored.attrs:
            await self.mqtt.add(stored, None)
        await self.journal.flush()
        await self.peers.tell("devices.added", {"ids": [stored.id]})
        return stored

    async def add_devices(
        self, devices: Sequence[Device], meters_most: int | None = None
    ) -> list[Device]:
        """Register many devices in one store transaction (all or none: Conflict on a taken
        serial, MetersCapped past `meters_most`); simulated twins boot, and their first
        reports are one group commit; real devices are polled or listened to as
        `add_device` does."""
        stored = await self._store_placed(devices, False, meters_most)
        for device in stored:
            if not device.simulated:
                if "url" in device.attrs:
                    self.poller.add(device)
                elif self.mqtt is not None and "mqtt_id" in device.attrs:
                    await self.mqtt.add(device, None)
            elif self.fleet_link is not None:  # the fleet processes boot them
                await self.fleet_link.add(device)
                await self.fleet_link.announce(device)
            else:
                self.link.fleet.add(device, None)
        await self.journal.flush()
        await self.peers.tell("devices.added", {"ids": [d.id for d in stored]})
        gctune.settle()  # a bulk registration lives on: out of every full collector pass
        return stored

    async def _peer_devices(self, body: Json) -> None:
        """Devices another worker registered: into the registry, and onto their links."""
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return
        fresh = await self.store.devices(ids)  # by key: the fleet's size costs nothing
        for device in fresh:
            if self.engine.known(device.id):
                continue
            self.engine.register(device)
            if device.simulated and self.fleet_link is not None:
                await self.fleet_link.add(device)
            elif "url" in device.attrs:  # polled here if this worker holds the poll lease
                self.poller.add(device)
            elif self.mqtt is not None and "mqtt_id" in device.attrs:
                await self.mqtt.add(device, None)

    async def adopt(
        self, account_id: int, protocol: str, mqtt_id: str, name: str, serial: str | None
    ) -> Device:
        """Add a real device that talks to the broker to the account (Conflict without a
        broker, or when anyone adopted that MQTT id already)."""
        if self.mqtt is None:
            raise Conflict(
                "this server has no MQTT link: start it with --link mqtt://host:port",
                field="protocol",
            )
        mqtt_id = canonical_mqtt_id(PROTOCOLS[protocol], mqtt_id)  # as its topics spell it
        if self.mqtt_id_taken(mqtt_id):  # (the answer does not say whose)
            raise Conflict(ADOPTED, field="mqtt_id")
        serial = serial or mqtt_id
        if any(self.engine.serial_taken(serial, m.code) for m in PLUG_MODELS):
            # the smart-plug face finds an account's plug by its serial: one plug a serial
            raise Conflict(f"a device with serial {serial!r} exists", field="serial")
        device = Device(
            id=0, account_id=account_id, serial=serial,
            model=PROTOCOLS[protocol].model, name=name or mqtt_id,
            created_at=self.clock.now(), tags=("mqtt",),
            attrs={"protocol": protocol, "mqtt_id": mqtt_id}, simulated=False,
        )  # fmt: skip
        return await self.add_device(device)

    def mqtt_id_taken(self, mqtt_id: str) -> bool:
        """Whether no account may adopt this MQTT id: an adopted device's, or a simulated
        device's own (with `--fleet external` each twin is an MQTT client under it,
        links/twinwire.py). Lookups: the cost does not grow with the fleet. It answers from
        what this worker has heard of; the store's unique MQTT id decides (_store_placed).
        Ids differing in case only are one: a Shelly's id is its MAC, whatever the case."""
        if self.mqtt is not None and self.mqtt.adopted(mqtt_id):
            return True
        return fold(mqtt_id) in self._twin_index()

    def _twin_index(self) -> set[str]:
        if self._twin_ids is None:  # built once, at the first question; kept by the engine
            self._twin_ids = set()
            for device in self.engine.all_devices():
                self._index_twin(device)
            self.engine.watch(self._index_twin)
        return self._twin_ids

    async def _store_placed(
        self, devices: Sequence[Device], one: bool, meters_most: int | None
    ) -> list[Device]:
        """Store new devices, each twin on an MQTT id free as far as this worker knows.

        Another worker may have stored one of those ids meanwhile: the store's unique index
        refuses the write (MqttIdTaken, naming them; nothing is stored), and the twins on
        them, and only those, move to their next free ids before the write is tried again.
        A real device's id taken is a Conflict (it is adopted already).
        """
        placed = self._place_twins(devices)
        for _ in range(PLACE_TRIES):
            try:
                if one:
                    return [await self.engine.add_device(placed[0], meters_most)]
                return await self.engine.add_devices(placed, meters_most)
            except MqttIdTaken as err:
                if any(not d.simulated and d.attrs.get("mqtt_id") in err.taken for d in placed):
                    raise Conflict(ADOPTED, field="mqtt_id") from None
                log.info("MQTT ids taken by another registration: %s", sorted(err.taken))
                self._twin_index().update(map(fold, err.taken))
                placed = self._place_twins(placed, again=err.taken)
        raise Conflict("no free MQTT id for a new device: try again", field="mqtt_id")

    def _place_twins(
        self, devices: Sequence[Device], again: Collection[str] | None = None
    ) -> list[Device]:
        """Give each new twin an MQTT id no device of the deployment has: its derived one,
        else the first free of the next candidates, kept in its attrs (each twin is an
        MQTT client under its id: two under one id take each other's broker session).
        With `again` (ids the store refused), only the twins placed on those move."""

        def moves(d: Device) -> bool:
            return d.simulated and (again is None or twinwire.mqtt_id(d) in again)

        # the ids that stay: real devices' own, and on a retry the other twins'
        batch = {
            twinwire.mqtt_id(d) if d.simulated else d.attrs["mqtt_id"]
            for d in devices
            if not moves(d) and (d.simulated or "mqtt_id" in d.attrs)
        }
        placed: list[Device] = []
        for device in devices:
            if moves(device):
                attempt = 0
                mqtt_id = self.twin_id(device, attempt)
                while mqtt_id in batch or self.mqtt_id_taken(mqtt_id):
                    attempt += 1
                    mqtt_id = self.twin_id(device, attempt)
                # the derived id is not stored (the common case: the attrs stay as they are)
                derived = (attempt == 0 and self.twin_id is twinwire.candidate) or (
                    mqtt_id == twinwire.candidate(device, 0)
                )
                if not derived or twinwire.ID_ATTR in device.attrs:
                    attrs = {k: v for k, v in device.attrs.items() if k != twinwire.ID_ATTR}
                    if not derived:
                        attrs[twinwire.ID_ATTR] = mqtt_id
                    device = replace(device, attrs=attrs)
                batch.add(mqtt_id)
            placed.append(device)
        return placed

    def _index_twin(self, device: Device) -> None:
        if device.simulated and self._twin_ids is not None:
            self._twin_ids.add(fold(twinwire.mqtt_id(device)))

    def _connect(self, device: Device) -> None:
        if self.fleet_link is not None:
            if not self.fleet_link.manages(device.id):
                self.spawn(self._connect_external(device), "fleet-add")
        elif self.link.fleet.get(device.id) is None:
            self.link.fleet.add(device, None)

    async def _connect_external(self, device: Device) -> None:
        assert self.fleet_link is not None
        await self.fleet_link.add(device)
        await self.fleet_link.announce(device)

    def reading(self, device_id: int) -> DeviceState:
        """The device's state for a face to show: the shadow, its meters read this instant
        (asked of an in-process twin, else carried on from the last report)."""
        shadow = self.engine.shadow(device_id)
        if not self.poller.manages(device_id):
            live = self.link.reading(device_id)
            if live is not None:
                return with_readings(shadow, live)
        return project(shadow, self.clock.now())

    async def simulate(self, account_id: int, device_id: int, action: SimAction) -> None:
        """A physical-world change to one of the account's simulated devices."""
        device = self.engine.device(account_id, device_id)
        if not device.simulated:  # (an adopted Shelly, a polled meter: it is the world)
            raise InvalidCommand("a real device cannot be simulated", field="device")
        if self.fleet_link is not None and self.fleet_link.manages(device.id):
            await self.fleet_link.simulate(device.id, action)
        else:
            await self.link.simulate(device.id, action)
        await self.scheduler.drained()  # the devices' reports of it, too
        await self.journal.flush()

    async def set_grid(
        self,
        account_id: int,
        frequency_hz: float | None,
        voltage_v: float | None,
        duration_s: float | None = None,
    ) -> None:
        """Set the account's grid; with `duration_s`, it returns to nominal after that long."""
        if self.fleet_link is not None:
            await self._set_external_grid(account_id, frequency_hz, voltage_v, duration_s)
            return
        fleet = self.link.fleet
        fleet.set_grid(account_id, frequency_hz=frequency_hz, voltage_v=voltage_v)
        if duration_s is not None:
            timer = self.extensions.pop(f"grid_event:{account_id}", None)
            if timer is not None:
                timer.cancel()
            self.extensions[f"grid_event:{account_id}"] = self.scheduler.call_later(
                duration_s,
                lambda _: fleet.reset_grid(
                    account_id, frequency=frequency_hz is not None, voltage=voltage_v is not None
                ),
            )
        await self.scheduler.drained()  # every device's report of the step
        await self.journal.flush()

    async def _set_external_grid(
        self,
        account_id: int,
        frequency_hz: float | None,
        voltage_v: float | None,
        duration_s: float | None,
    ) -> None:
        """The grid step for every fleet process serving the account's devices; the return
        to nominal is a timer here."""
        link = self.fleet_link
        assert link is not None
        await link.set_grid(account_id, frequency_hz, voltage_v)
        if duration_s is not None:
            timer = self.extensions.pop(f"grid_event:{account_id}", None)
            if timer is not None:
                timer.cancel()
            frequency, voltage = frequency_hz is not None, voltage_v is not None

            def reset(_: object) -> None:
                self.spawn(link.reset_grid(account_id, frequency, voltage), "grid-reset")

            self.extensions[f"grid_event:{account_id}"] = self.scheduler.call_later(
                duration_s, reset
            )
        await self.journal.flush()

    async def advance(self, seconds: float) -> float:
        """Jump a manual clock forward, firing every timer on the way (Conflict otherwise).

        The jump is taken in steps of at most ADVANCE_STEP_S with a group commit after
        each, so a long jump over a large fleet never holds more than one step's records
        in memory.
        """
        if not self.clock.manual:
            raise Conflict("the clock is not manual (start with --speed 0)", field="seconds")
        target = self.clock.now() + seconds
        now = self.clock.now()
        while target - now > 1e-9:  # (rounding never leaves a sliver to spin on)
            now = await self.scheduler.advance(min(ADVANCE_STEP_S, target - now))
            await self.journal.flush()
        return now
