"""A fleet process: the database's simulated devices of one shard, each its own MQTT client.

The process owns its twins' NVRAM as a device owns its flash: every report and every RPC
answer is published only after the NVRAM saved before it is committed to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchgear import gctune
from switchgear.core.anchor import fleet_clock
from switchgear.core.journal import Journal
from switchgear.core.model import (
    Action,
    Device,
    DeviceEvent,
    DeviceState,
    Json,
    StatusKind,
    Switch,
)
from switchgear.core.ports import Store
from switchgear.core.scheduler import Scheduler
from switchgear.devices.fleet import Fleet
from switchgear.devices.gateway import DEFAULT_MAX_DELAY_S
from switchgear.devices.twin import Twin
from switchgear.errors import InvalidInput, SwitchgearError
from switchgear.links import twinwire as tw
from switchgear.links.broker import Broker
from switchgear.links.leanmqtt import LeanTransport
from switchgear.links.shelly import Gen1
from switchgear.links.twinsession import SessionPool, TwinSession

log = logging.getLogger(__name__)

SEEN_PER_DEVICE = 64  # RPC ids a device remembers, to answer a duplicate without rerunning
SETTLE_EVERY = 1000  # sessions up between two freezes while a fleet connects
BURST = 1000  # reports to log or send that make a burst (the collector waits it out)
GEN1 = Gen1()
SIM_KINDS = {method: kind for kind, method in tw.SIM_METHODS.items()}


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` (0 <= i < n) as (i, n)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise InvalidInput(f"shard {text!r} is not i/n, e.g. 0/2", field="shard") from None
    if not 0 <= i < n:
        raise InvalidInput(f"shard {text!r}: i must be 0 to n-1", field="shard")
    return i, n


def raise_open_files_limit() -> int:
    """Lift this process's soft limit on open files to the hard one (a socket per device)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


@dataclass(eq=False, slots=True)
class TwinClient:
    """One simulated device on the broker: its session and the answers it remembers."""

    device: Device
    transport: TwinSession
    mqtt_id: str
    twin: Twin | None = None
    seen: dict[tuple[str, Any], bytes] | None = None  # made at the first request

    def send(self, topic: str, payload: bytes, retain: bool) -> None:
        """QoS 1: now, or (kept by the session) when it is back on the broker."""
        self.transport.put(topic, payload, retain)


@dataclass(eq=False, slots=True)
class Reports:
    """A device's events queued one after another: one `NotifyEvent` carrying them all,
    each state sent once (an event whose state equals the one before's omits it)."""

    events: list[bytes]  # each event encoded
    last: DeviceState


Outgoing = tuple[TwinClient, str, bytes | Reports, bool]  # client, topic, payload, retain


class FleetNode:
    """Runs the twins of one shard against a broker and the database."""

    def __init__(
        self,
        store: Store,
        host: str | Broker,
        port: int | None = None,
        shard: tuple[int, int] = (0, 1),
        gateway_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        self.store = store
        # the broker's address, login and TLS (a plain host and port: no login, no TLS)
        self.broker = host if isinstance(host, Broker) else Broker(host, port or 1883)
        self.host, self.port = self.broker.host, self.broker.port
        self.shard = shard
        self.gateway_delay_s = gateway_delay_s
        self.clients: dict[int, TwinClient] = {}
        self._outbox: list[Outgoing] = []
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._load_lock = asyncio.Lock()
        self._announced: set[int] = set()  # devices the server registered, to take on
        self.deployment = ""  # the deployment's id (from the store at start): grid steps' own
        self._came_up: set[int] = set()  # devices whose session reached the broker, to settle
        self.control = LeanTransport(
            self.broker, client_id=f"switchgear-fleet-{secrets.token_hex(6)}"
        )
        self.sessions = SessionPool(self.broker)

    async def start(self) -> None:
        await self.store.open()
        self.clock = await fleet_clock(self.store)
        self.scheduler = Scheduler(self.clock)
        self.journal = Journal(self.store, self.clock, keeps_clock=False)  # the server's
        self.fleet = Fleet(self.clock, self.scheduler, self._on_event, self.journal.put_nvram,
                           self.gateway_delay_s)  # fmt: skip
        self.journal.start()
        self.scheduler.start()
        self._spawn(self._pump())
        self.deployment = await tw.deployment_id(self.store)
        await self.control.subscribe(tw.CONTROL_ADDED)
        await self.control.subscribe(tw.CONTROL_GRID)
        self.control.start(self._on_control, lambda _up: None)
        await self.load()
        log.info("fleet shard %d/%d: %d devices", *self.shard, len(self.clients))

    def _on_control(self, topic: str, payload: bytes) -> None:
        """The server's word to every fleet process: a device registered, a grid step."""
        if topic == tw.CONTROL_ADDED:
            added = tw.loads(payload)
            device_id = added.get("device_id") if added is not None else None
            if isinstance(device_id, int):
                self._announced.add(device_id)
                self._spawn(self.load_announced())
            else:
                self._spawn(self.load())
            return
        frame = tw.loads(payload)
        if frame is None or not isinstance(frame.get("account_id"), int):
            return
        if frame.get("deployment") != self.deployment:  # another deployment on this broker
            return
        method, params = str(frame.get("method")), frame.get("params")
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self._grid(frame["account_id"], method, params if isinstance(params, dict) else {})

    async def load(self) -> None:
        """Take on the shard's simulated devices not running yet (at start, and when the
        server says it registered one)."""
        async with self._load_lock:
            devices = await self.store.devices()
            nvram = await self.store.nvram()
            i, n = self.shard
            for d in devices:
                if d.simulated and d.id not in self.clients and tw.shard_of(d, n) == i:
                    await self._add(d, nvram.get(d.id))

    async def load_announced(self) -> None:
        """Take on the devices the server announced, read by key, every one pending at once:
        a registration costs the fleet's size nothing (a bulk import announces thousands)."""
        async with self._load_lock:
            ids, self._announced = sorted(self._announced), set()
            i, n = self.shard
            for d in await self.store.devices(ids) if ids else ():
                if d.simulated and d.id not in self.clients and tw.shard_of(d, n) == i:
                    await self._add(d, None)  # registered just now: it has no NVRAM yet

    async def _add(self, device: Device, blob: Json | None) -> None:
        online = tw.online_topic(device)
        mqtt_id = tw.mqtt_id(device)
        session = self.sessions.session(mqtt_id, will=(online, b"false"), birth=(online, b"true"))
        tc = TwinClient(device, session, mqtt_id)
        self.clients[device.id] = tc  # before the boot: its reports need the client
        tc.twin = self.fleet.add(device, blob)
        await session.subscribe(tw.rpc_topic(device))
        if tw.wire(device).gen1:
            for f in GEN1.command_filters(mqtt_id):
                await session.subscribe(f)
        session.start(lambda topic, payload: self._on_message(tc, topic, payload),
                      lambda up: self._session_state(device.id, up))  # fmt: skip

    def _session_state(self, device_id: int, up: bool) -> None:
        """Freeze what the twins' connects built, every SETTLE_EVERY sessions up and once all
        are: the collector's full passes walked it all, again at each quarter it grew by
        (0.15-1.35 s each at 5,000 twins a process), stalling commands; docs/performance.md
        has the figures."""
        if up and device_id not in self._came_up:
            self._came_up.add(device_id)
            came = len(self._came_up)
            if came % SETTLE_EVERY == 0 or came == len(self.clients):
                gctune.settle()

    async def stop(self) -> None:
        """Leave the broker saying so (a clean disconnect sends no last will)."""
        await self.journal.flush()
        for tc in self.clients.values():
            tc.send(tw.online_topic(tc.device), b"false", True)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.scheduler.stop()
        await self.journal.stop()
        await self.sessions.close()
        await self.control.close()
        await self.store.close()

    def bursting(self) -> bool:
        """Whether a burst is under way: BURST reports or more to log or send."""
        return self.scheduler.waiting + len(self._outbox) >= BURST

    # --- reports ------------------------------------------------------------------

    def _on_event(self, ev: DeviceEvent) -> None:
        tc = self.clients.get(ev.device_id)
        if tc is None:
            return
        self._report(tc, ev)
        if ev.kind is StatusKind.CONNECTION:  # the simulated network: on or off the broker
            self._queue(tc, tw.online_topic(tc.device),
                        b"true" if ev.state.online else b"false", retain=True)  # fmt: skip
        elif tw.wire(tc.device).gen1 and ev.kind in (StatusKind.RELAY, StatusKind.UPDATE):
            self._gen1_state(tc)

    def _gen1_state(self, tc: TwinClient) -> None:
        if tc.twin is None:
            return
        s = tc.twin.snapshot()
        c = s.channels[0]
        m = s.meters[0] if s.meters else None
        for topic, payload in GEN1.report(
            tc.mqtt_id, c.on, c.overpower, m.power_w if m else 0.0, m.energy_wh if m else 0.0
        ):
            self._queue(tc, topic, payload)  # fmt: skip

    def _report(self, tc: TwinClient, ev: DeviceEvent) -> None:
        """Queue an event; joined to the device's report queued just before, if any (a
        trip's trigger, relay and power events: one message, not three)."""
        last = self._outbox[-1] if self._outbox else None
        if last is not None and last[0] is tc and isinstance(last[2], Reports):
            r = last[2]
            if len(r.events) < tw.MAX_EVENTS:
                same = ev.state is r.last or ev.state == r.last
                r.events.append(tw.dumps(tw.event_body(ev, with_state=not same)))
                r.last = ev.state
                return
        reports = Reports([tw.dumps(tw.event_body(ev))], ev.state)
        self._queue(tc, tw.events_topic(tc.device), reports)

    def _queue(
        self, tc: TwinClient, topic: str, payload: bytes | Reports, retain: bool = False
    ) -> None:
        self._outbox.append((tc, topic, payload, retain))
        self._wake.set()

    async def _pump(self) -> None:
        """Publish in order, each batch after the NVRAM saved before it is durable."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            try:
                await self.journal.flush()
            except Exception:
                log.exception("NVRAM not committed; the reports wait")
                self._outbox[:0] = batch
                await asyncio.sleep(0.2)
                self._wake.set()
                continue
            for tc, topic, payload, retain in batch:
                if isinstance(payload, Reports):
                    payload = tw.notify_events(tc.mqtt_id, payload.events)
                tc.send(topic, payload, retain)

    # --- requests -----------------------------------------------------------------

    def _on_message(self, tc: TwinClient, topic: str, payload: bytes) -> None:
        if topic == tw.rpc_topic(tc.device):
            self._rpc(tc, payload)
        elif tc.twin is not None and tw.wire(tc.device).gen1:
            self._gen1_command(tc, topic, payload.decode(errors="replace").strip().lower())

    def _rpc(self, tc: TwinClient, payload: bytes) -> None:
        frame = tw.loads(payload)
        if frame is None or "id" not in frame or not isinstance(frame.get("src"), str):
            return
        src, rpc_id = frame["src"], frame["id"]
        key = (src, rpc_id if isinstance(rpc_id, (int, str)) else str(rpc_id))
        if tc.seen is None:
            tc.seen = {}
        body = tc.seen.get(key)
        if body is None:  # a duplicate (QoS 1 may deliver twice) gets the same answer
            body = self._run(tc, src, rpc_id, str(frame.get("method")), frame.get("params"))
            tc.seen[key] = body
            if len(tc.seen) > SEEN_PER_DEVICE:
                del tc.seen[next(iter(tc.seen))]  # the oldest
        self._queue(tc, f"{src}/rpc", body)

    def _run(self, tc: TwinClient, src: str, rpc_id: Any, method: str, params: Any) -> bytes:
        twin = tc.twin
        assert twin is not None
        args = params if isinstance(params, dict) else {}
        try:
            if method in ("Sim.SetGrid", "Sim.ResetGrid"):
                self._grid(tc.device.account_id, method, args)
                result: Json = {}
            elif method in SIM_KINDS:
                self.fleet.apply(tc.device.id, tw.decode_sim({**args, "kind": SIM_KINDS[method]}))
                result = {}
            else:
                cmd = tw.decode_command(tc.device, method, args)
                if cmd is None:
                    result = twin.snapshot().to_json()
                else:
                    result = tw.encode_result(twin.handle(cmd))
        except SwitchgearError as err:
            return tw.error_answer(rpc_id, tc.mqtt_id, src, err)
        except (KeyError, TypeError, ValueError) as err:
            bad = InvalidInput(f"bad parameters for {method}: {err}", field="params")
            return tw.error_answer(rpc_id, tc.mqtt_id, src, bad)
        return tw.answer(rpc_id, tc.mqtt_id, src, result)

    def _grid(self, account_id: int, method: str, args: dict[str, Any]) -> None:
        """An account's grid step (or its end), once: the server sends it to every device
        of the account, and this process may run many of them."""
        g = self.fleet.grid(account_id)
        if method == "Sim.ResetGrid":
            frequency = bool(args.get("frequency")) and g.frequency_hz is not None
            voltage = bool(args.get("voltage")) and g.voltage_v is not None
            if frequency or voltage:
                self.fleet.reset_grid(account_id, frequency=frequency, voltage=voltage)
            return
        f, v, at = args.get("frequency_hz"), args.get("voltage_v"), args.get("at")
        f = None if f is None else float(f)
        v = None if v is None else float(v)
        at = None if at is None else float(at)  # the server's instant of the step (one clock)
        if (f is not None and f != g.frequency_hz) or (v is not None and v != g.voltage_v):
            self.fleet.set_grid(account_id, frequency_hz=f, voltage_v=v, at=at)

    def _gen1_command(self, tc: TwinClient, topic: str, text: str) -> None:
        """Gen1's own commands, for any client that speaks them (Home Assistant, Node-RED)."""
        assert tc.twin is not None
        if topic.endswith("/relay/0/command") and text in ("on", "off", "toggle"):
            with contextlib.suppress(SwitchgearError):  # offline: a Gen1 plug just ignores it
                tc.twin.handle(Switch(Action(text), 0))
        elif text == "update" and tc.twin.online:
            self._gen1_state(tc)
        elif text == "announce" and tc.twin.online:
            info = {"id": tc.mqtt_id, "model": GEN1.model, "mac": tc.mqtt_id[-6:],
                    "ip": None, "new_fw": False, "fw_ver": "switchgear-twin"}  # fmt: skip
            self._queue(tc, f"shellies/{tc.mqtt_id}/announce", tw.dumps(info))
            self._queue(tc, "shellies/announce", tw.dumps(info))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def run(store: Store, broker: Broker, shard: tuple[int, int], gateway_delay_s: float) -> None:
    """`switchgear fleet`: serve until SIGINT or SIGTERM (then its devices say offline)."""
    raise_open_files_limit()
    node = FleetNode(store, broker, shard=shard, gateway_delay_s=gateway_delay_s)
    with gctune.paused():  # no passes over the twins as they are built (as a server's start)
        await node.start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # (a SIGINT ignored by its parent, too)
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    # the booted fleet out of every collector pass, as a server's; none in a burst
    holder = asyncio.get_running_loop().create_task(gctune.held_while(node.bursting))
    try:
        with gctune.tuned():
            await stop.wait()
    finally:
        holder.cancel()
        await node.stop()


def serve_fleet(
    store: Store, broker: Broker, shard: tuple[int, int], gateway_delay_s: float
) -> None:
    """Run a fleet process on uvloop where it is installed (as uvicorn runs the server)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(store, broker, shard, gateway_delay_s))
