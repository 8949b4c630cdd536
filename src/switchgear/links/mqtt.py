"""Southbound over MQTT: real Shelly devices on a broker, adopted into accounts.

A command is published QoS 1 and answered when the device says so: a Gen2 device by
the RPC answer carrying the request's id, a Gen1 device by publishing its relay's new
state. What a device's protocol cannot do, the server does on its behalf: a delayed
switch, and a Gen1 timed switch's flip-back, are timers here on the process clock, kept
in the device's NVRAM row so a restart re-arms them at their due times. A Gen2 runs its
flip-back itself; it is kept there too (not armed), so after a restart the server still
shows when it comes and records it as the timer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from switchgear.core.clock import Clock
from switchgear.core.model import (
    Action,
    ChannelState,
    Command,
    CommandResult,
    Device,
    DeviceEvent,
    DeviceState,
    Json,
    MeterReading,
    Refresh,
    SharedEvent,
    StatusKind,
    Switch,
    short_id,
)
from switchgear.core.ports import EventSink, SimAction
from switchgear.core.scheduler import Scheduler
from switchgear.devices.twin import NvramSink
from switchgear.errors import DeviceOffline, InvalidCommand
from switchgear.links.adopted import Adopted, Intent, Pending, Waiter
from switchgear.links.mqttclient import MqttTransport
from switchgear.links.shelly import PROTOCOLS, Report, fold, rpc_answer, switch_report
from switchgear.links.shellygroup import KEEP_S, Group

log = logging.getLogger(__name__)

UPDATE_PERIOD_S = 900.0  # an unchanged power reading is recorded at most this often


class MqttLink:
    """A DeviceLink for devices that talk to the broker themselves."""

    def __init__(
        self, clock: Clock, scheduler: Scheduler, nvram_sink: NvramSink, transport: MqttTransport
    ) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.transport = transport
        self._save = nvram_sink
        self._sinks: list[EventSink] = []
        self._devices: dict[int, Adopted] = {}
        self._by_topic: dict[str, Adopted] = {}  # a filter's fixed prefix -> device
        self._taken: set[str] = set()  # the adopted MQTT ids, folded (adopted())
        self._rpc: dict[int, asyncio.Future[CommandResult]] = {}
        self._rpc_ids = itertools.count(1)
        self._asks: dict[int, Adopted] = {}  # a Gen2's state request -> its device
        self._tasks: set[asyncio.Task[Any]] = set()
        self._src = transport.client_id  # Gen2 answers come to `<src>/rpc`
        self.group: Group | None = None  # other API workers take the same devices
        self._msg: tuple[str, bytes] | None = None  # (group mode) the message being applied
        self._derived: list[tuple[DeviceEvent, str]] = []  # and the records it makes

    def join(self, group: Group) -> None:
        """Work beside other API workers (links/shellygroup.py): each record and timer once."""
        self.group = group
        group.worker = self._src
        group.peers.on("shelly.intent", self._peer_intent)
        group.peers.on("shelly.pending", self._peer_pending)

    # --- registry -----------------------------------------------------------

    def attach(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def manages(self, device_id: int) -> bool:
        return device_id in self._devices

    def adopted(self, mqtt_id: str) -> bool:
        """Whether a device with this MQTT id is adopted (by anyone): a lookup, whatever
        the number of adopted devices (ids differing in case only are one device's)."""
        return fold(mqtt_id) in self._taken

    def mqtt_ids(self) -> set[str]:
        """The MQTT ids adopted so far."""
        return {a.mqtt_id for a in self._devices.values()}

    async def start(self) -> None:
        self.transport.start(self._on_message, self._on_connection)
        await self.transport.subscribe(f"{self._src}/rpc")

    async def add(self, device: Device, blob: Json | None) -> None:
        """Take a device on: listen to its topics, restore what the server kept for it."""
        a = Adopted(device, PROTOCOLS[device.attrs["protocol"]])
        if isinstance(blob, dict):
            a.on = bool(blob.get("on"))
            a.energy_base_wh = float(blob.get("energy_base_wh") or 0.0)
            a.counter_wh = float(blob.get("counter_wh") or 0.0)
            p = blob.get("pending")
            if isinstance(p, dict):
                a.pending = Pending(float(p["due"]), bool(p["on"]), str(p["reason"]), p["then_s"])
        self._devices[device.id] = a
        self._taken.add(fold(a.mqtt_id))
        for f in a.proto.filters(a.mqtt_id):
            self._by_topic[f.split("/#")[0]] = a
            await self.transport.subscribe(f)
            if self.group is not None:
                await self.transport.share(self.group.name, f, self._on_shared)
        if a.pending is not None and not self._runs_itself(a, a.pending):
            self._arm(a, a.pending)  # an overdue one fires once the device is back
        self._ask_state(a)

    async def close(self) -> None:
        for a in self._devices.values():
            if a.pending and a.pending.timer:
                a.pending.timer.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.transport.close()

    # --- messages from the broker ------------------------------------------

    def _on_connection(self, up: bool) -> None:
        if up:  # (re)connected: ask every device for its state; answers mark them online
            for a in self._devices.values():
                a.gone = False  # it may be back (its will, if retained, comes again: the
                self._ask_state(a)  # `online` topic sorts first, as the resubscribe goes)
        else:
            for a in self._devices.values():  # (with other workers: theirs to say, if so)
                self._went_offline(a, "the server lost the MQTT broker",
                                   record=self.group is None)  # fmt: skip

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == f"{self._src}/rpc":
            answer = rpc_answer(payload)
            asked = self._asks.pop(answer.id, None) if answer else None
            if asked is not None and answer is not None and isinstance(answer.result, dict):
                self._answered_state(asked, topic, payload, switch_report(answer.result))
                return
            fut = self._rpc.pop(answer.id, None) if answer else None
            if answer is not None and fut is not None and not fut.done():  # duplicates: gone
                ok = answer.error is None
                fut.set_result(CommandResult(ok=ok, data={"result": answer.result},
                                             error=answer.error))  # fmt: skip
            return
        a = self._device_for(topic)
        if a is None:
            return
        report = a.proto.parse(a.mqtt_id, topic, payload)
        if self.group is None:
            if report is not None:
                self._apply(a, report)
            return
        self._msg, self._derived = (topic, payload), []
        try:
            if report is not None:
                self._apply(a, report)
        finally:
            derived, self._msg, self._derived = self._derived, None, []
        self.group.election.plain((topic, payload), derived)

    def _answered_state(self, a: Adopted, topic: str, payload: bytes, report: Report) -> None:
        """A state request's answer, which this worker alone gets: with other workers the
        records it makes are not this worker's to write (each worker asks for itself),
        but for the device coming online by it (after adoption, or a reconnect): every
        worker names that one alike (what it says, to 10 s) and the first to claim the
        name in the store writes it."""
        if self.group is None:
            self._apply(a, report)
            return
        self._msg, self._derived = (f"{a.mqtt_id}/state", b"answered"), []  # any worker's
        try:
            self._apply(a, report)
            for event, rid in self._derived:
                if event.kind is StatusKind.CONNECTION:
                    self._spawn(self.group.record_once(event, rid))
        finally:
            self._msg, self._derived = None, []

    def _on_shared(self, topic: str, payload: bytes) -> None:
        """(group mode) This worker's share of the messages: it writes their records."""
        if self.group is not None and self._device_for(topic) is not None:
            self.group.election.shared((topic, payload))

    def _device_for(self, topic: str) -> Adopted | None:
        for prefix in (topic, topic.rsplit("/", 1)[0], topic.rsplit("/", 2)[0]):
            a = self._by_topic.get(prefix)
            if a is not None:
                return a
        return None

    def _apply(self, a: Adopted, r: Report) -> None:
        now = self.clock.now()
        if r.online is False:
            a.gone = True
            self._went_offline(a, "the device left the broker")
            return
        if r.online:
            a.gone = False
        elif a.gone:  # a report the broker retained from before it left: not the device now
            return
        if not a.online:
            a.online = True
            self._emit(a, StatusKind.CONNECTION, "online", {"online": True})
            if r.online:  # it says hello: ask for its state (it may have changed meanwhile)
                self._ask_state(a)
            if a.pending is not None and a.pending.due <= now:
                self._fire(a)  # fell due while it was away
        if r.energy_wh is not None:
            if r.energy_wh + 1e-9 < a.counter_wh:  # the device rebooted: its counter restarted
                a.energy_base_wh += a.counter_wh
            a.counter_wh = r.energy_wh
            self._save(a.device.id, a.nvram)
        for name in ("power_w", "voltage_v", "current_a"):
            value = getattr(r, name)
            if value is not None:
                setattr(a, name, value)
        if r.on is not None:
            self._relay(a, r.on, r.overpower)
        if r.power_w is not None or r.energy_wh is not None:
            due = now - a.recorded_at >= UPDATE_PERIOD_S
            changed = a.recorded_power is None or abs(a.power_w - a.recorded_power) >= 0.5
            record = due or changed
            if record:
                a.recorded_power, a.recorded_at = a.power_w, now
            self._emit(a, StatusKind.UPDATE, "device", self._summary(a), record=record)

    def _relay(
        self, a: Adopted, on: bool, overpower: bool, by: str | None = None, rid: str | None = None
    ) -> None:
        """The relay as reported; `by`: the command that switched it (else: the waiter
        this report answers, or "device": switched at the plug or by its own timers);
        `rid`: (group mode) the id of that command's record, written here."""
        changed = on != a.on or overpower != a.overpower
        cmd: tuple[bool, str] | None = None if rid is None else (True, rid)
        for w in list(a.waiters):
            if w.on == on:
                a.waiters.remove(w)
                if not w.fut.done():
                    w.fut.set_result(None)
                if by is None and w.rid is not None:
                    cmd = (True, w.rid)
                by = by or w.reason
        if by is None and not overpower:  # another worker's command? (it records it)
            for i in a.intents:
                if i.on == on:  # (unchanged: the device was in that state already)
                    a.intents.remove(i)
                    if changed:
                        by, cmd = i.reason, (False, i.rid)
                    break
        if by is not None:
            self._cancel_pending(a)  # a newer command, carried out, replaces a pending flip
        reason = by or "device"
        a.on, a.overpower = on, overpower
        if overpower and changed:  # (a Gen1 repeats `overpower` every update period)
            a.power_w = 0.0
            self._emit(a, StatusKind.TRIGGER, "overpower", {"power": None, "limit": None}, 0)
        if changed:
            if reason == "device" and a.pending is not None:
                if self._own_flip(a, on):  # the flip the device ran itself (toggle_after)
                    reason = a.pending.reason
                self._cancel_pending(a)  # done, or void after a switch by hand
            self._save(a.device.id, a.nvram)
            self._emit(a, StatusKind.RELAY, "overpower" if overpower else reason,
                       {"on": on, "toggleIn": self._toggle_in(a)}, 0, cmd=cmd)  # fmt: skip
        else:
            self._emit(a, StatusKind.RELAY, reason, {"on": on}, 0, record=False)

    @staticmethod
    def _own_flip(a: Adopted, on: bool) -> bool:
        """Whether the device reporting `on` is its own flip-back (a Gen2's toggle_after)
        rather than a switch at the plug: the server's timers switch by command."""
        p = a.pending
        return p is not None and MqttLink._runs_itself(a, p) and p.on == on

    @staticmethod
    def _runs_itself(a: Adopted, p: Pending) -> bool:
        """Whether the device runs this pending switch itself (a Gen2's toggle_after)."""
        return a.proto.flips_back_itself and p.reason == "auto"

    def _went_offline(self, a: Adopted, why: str, *, record: bool = True) -> None:
        for w in a.waiters:
            if not w.fut.done():
                w.fut.set_exception(DeviceOffline(why))
        a.waiters.clear()
        for call in a.calls:  # (its answer will not come now)
            if not call.done():
                call.set_exception(DeviceOffline(why))
        if a.online:
            a.online = False
            self._emit(a, StatusKind.CONNECTION, "offline", {"online": False}, record=record)

    # --- commands -----------------------------------------------------------

    async def send(self, device_id: int, command: Command) -> CommandResult:
        a = self._devices.get(device_id)
        if a is None or not a.online or not self.transport.connected:
            raise DeviceOffline("device is offline")
        if isinstance(command, Refresh):
            await self._publish(self._state_request(a))
            return CommandResult(ok=True)
        if not isinstance(command, Switch) or command.channel not in (0, None):
            raise InvalidCommand(
                "a device on MQTT takes switch commands for channel 0 only; "
                "its settings are set on the device itself", field="command",
            )  # fmt: skip
        on = command.action is Action.ON or (command.action is Action.TOGGLE and not a.on)
        if command.delay:
            self._cancel_pending(a)  # a newer command replaces a pending flip
            p = Pending(self.clock.now() + command.delay, on, "timer", command.duration)
            self._arm(a, p)
            self._save(a.device.id, a.nvram)
            self._emit(a, StatusKind.FUNCTION, "timer", {"on": on, "delay": command.delay}, 0)
            await self._tell_pending(a, armed=True)
            return CommandResult(ok=True, data={"on": [a.on], "toggle_at": p.due})
        result = await self._switch(a, on, command.duration)
        if result.ok and command.duration and not a.proto.flips_back_itself:
            self._arm(a, Pending(self.clock.now() + command.duration, not on, "auto"))
            self._save(a.device.id, a.nvram)
            self._emit(a, StatusKind.RELAY, "api", {"on": a.on, "toggleIn": self._toggle_in(a)},
                       0, record=False)  # fmt: skip
            await self._tell_pending(a, armed=True)
        return result

    async def _switch(
        self, a: Adopted, on: bool, duration: float | None, reason: str = "api"
    ) -> CommandResult:
        """Publish a switch and wait for the device's answer (the engine bounds the wait)."""
        flip_back = duration if a.proto.flips_back_itself else None
        rpc_id = next(self._rpc_ids)
        msgs = a.proto.switch(a.mqtt_id, on, flip_back, rpc_id, self._src)
        rid = None
        if self.group is not None:  # the others hear of it first: the record is ours
            rid = short_id()
            intent = {"device": a.device.id, "on": on, "reason": reason, "rid": rid}
            await self.group.peers.tell("shelly.intent", intent)
        if a.proto.acks_by_rpc:
            fut: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
            self._rpc[rpc_id] = fut
            a.calls.add(fut)
            # its notification of the change may come before its answer: ours too
            seen = Waiter(on, reason, asyncio.get_running_loop().create_future(), rid)
            a.waiters.append(seen)
            try:
                await self._publish(msgs)
                result = await fut
            finally:
                self._rpc.pop(rpc_id, None)
                a.calls.discard(fut)
                self._unwait(a, seen)
                if not (fut.done() and not fut.cancelled() and fut.exception() is None
                        and fut.result().ok):  # fmt: skip
                    self._drop_intent(a, rid)
            if result.ok:
                unchanged = a.on == on and not a.overpower
                self._relay(a, on, False, reason, rid)  # the answer is the device's word
                if unchanged:  # it notifies no change: no report uses the intent up there
                    self._drop_intent(a, rid)
                if flip_back:  # the device's timer: kept, so a restart still knows of it
                    a.pending = Pending(self.clock.now() + flip_back, not on, "auto")
                    self._save(a.device.id, a.nvram)
                    self._emit(a, StatusKind.RELAY, "api", {"on": on, "toggleIn": flip_back}, 0,
                               record=False)  # fmt: skip
                    await self._tell_pending(a, armed=False)
            return result
        waiter = Waiter(on, reason, asyncio.get_running_loop().create_future(), rid)
        a.waiters.append(waiter)
        try:
            if a.on == on:  # no change to announce: ask the device to say its state again
                msgs += a.proto.refresh(a.mqtt_id, rpc_id, self._src)
            await self._publish(msgs)
            await waiter.fut
        finally:
            if waiter in a.waiters:  # not answered: offline, or the engine stopped waiting
                a.waiters.remove(waiter)
                self._drop_intent(a, rid)
        return CommandResult(ok=True, data={"on": [on]})

    @staticmethod
    def _unwait(a: Adopted, waiter: Waiter) -> None:
        """Stop waiting for a report no one awaits (an offline it was told is read)."""
        if waiter in a.waiters:
            a.waiters.remove(waiter)
        if waiter.fut.done() and not waiter.fut.cancelled():
            waiter.fut.exception()

    async def _publish(self, msgs: list[tuple[str, bytes]]) -> None:
        for topic, payload in msgs:
            await self.transport.publish(topic, payload)

    def _state_request(self, a: Adopted) -> list[tuple[str, bytes]]:
        """Ask the device for its state; a Gen2's answer (`Switch.GetStatus`) is its word
        (it sends no notification of what did not change)."""
        rpc_id = next(self._rpc_ids)
        if a.proto.acks_by_rpc:
            self._asks = {k: v for k, v in self._asks.items() if v is not a}  # the latest
            self._asks[rpc_id] = a
        return a.proto.refresh(a.mqtt_id, rpc_id, self._src)

    def _ask_state(self, a: Adopted) -> None:
        msgs = self._state_request(a)
        self._spawn(self._quietly(msgs))

    async def _quietly(self, msgs: list[tuple[str, bytes]]) -> None:
        with contextlib.suppress(DeviceOffline):  # not connected: the reconnect asks again
            await self._publish(msgs)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a synchronous test): nothing to ask
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the server's timers for the device ------------------------------------

    def _arm(self, a: Adopted, p: Pending) -> None:
        a.pending = p
        p.timer = self.scheduler.call_at(p.due, lambda _: self._fire(a))

    def _cancel_pending(self, a: Adopted) -> None:
        if a.pending is not None:
            if a.pending.timer is not None:
                a.pending.timer.cancel()
            a.pending = None

    def _fire(self, a: Adopted) -> None:
        p = a.pending
        if p is None or not a.online:
            return  # kept: it fires when the device is back
        self._spawn(self._run_pending(a, p))

    async def _run_pending(self, a: Adopted, p: Pending) -> None:
        if a.pending is not p:
            return
        # armed on every worker: the first to claim it runs it (the relay's report, with
        # the runner's intent, clears it on the others)
        if self.group is not None and not await self.group.fire(a.device.id, p.due, p.on):
            return
        if a.pending is not p:
            return
        a.pending = None
        try:
            flip_back = p.then_s if a.proto.flips_back_itself else None
            await asyncio.wait_for(self._switch(a, p.on, flip_back, p.reason), timeout=30)
        except (DeviceOffline, TimeoutError):
            log.warning("device %s missed its %s switch", a.device.id, p.reason)
            return
        if p.then_s and not a.proto.flips_back_itself:
            self._arm(a, Pending(self.clock.now() + p.then_s, not p.on, "auto"))
        self._save(a.device.id, a.nvram)
        if a.pending is not None:
            await self._tell_pending(a, armed=not a.proto.flips_back_itself)

    # --- group mode: what the other workers tell ---------------------------------

    async def _tell_pending(self, a: Adopted, *, armed: bool) -> None:
        """Every worker keeps the device's pending switch (any of them may fire it)."""
        if self.group is not None:
            p = a.pending.to_json() if a.pending else None
            body: Json = {"device": a.device.id, "pending": p, "armed": armed}
            await self.group.peers.tell("shelly.pending", body)

    async def _peer_pending(self, body: Json) -> None:
        a = self._devices.get(body.get("device")) if isinstance(body, dict) else None  # type: ignore[arg-type]
        if a is None or not isinstance(body, dict):
            return
        self._cancel_pending(a)
        p = body.get("pending")
        if isinstance(p, dict):
            pending = Pending(float(p["due"]), bool(p["on"]), str(p["reason"]), p["then_s"])
            if body.get("armed"):
                self._arm(a, pending)
            else:
                a.pending = pending
        self._emit(
            a,
            StatusKind.RELAY,
            "api",
            {"on": a.on, "toggleIn": self._toggle_in(a)},
            0,
            record=False,
        )  # fmt: skip (the shadow's toggle_at, as on the worker that set it)

    def _drop_intent(self, a: Adopted, rid: str | None) -> None:
        """A command that failed: the others forget its intent (so it names no later switch)."""
        if self.group is not None and rid is not None:
            self._spawn(self.group.peers.tell("shelly.intent", {"device": a.device.id,
                                                                "drop": rid}))  # fmt: skip

    async def _peer_intent(self, body: Json) -> None:
        a = self._devices.get(body.get("device")) if isinstance(body, dict) else None  # type: ignore[arg-type]
        if a is None or not isinstance(body, dict):
            return
        if "drop" in body:
            a.intents = [i for i in a.intents if i.rid != body["drop"]]
            return
        now = time.monotonic()
        a.intents = [i for i in a.intents if now - i.at < KEEP_S]
        a.intents.append(Intent(bool(body["on"]), str(body["reason"]), str(body["rid"]), now))

    # --- reports to the engine ---------------------------------------------

    def _toggle_in(self, a: Adopted) -> float | None:
        return None if a.pending is None else max(0.0, a.pending.due - self.clock.now())

    def _state(self, a: Adopted) -> DeviceState:
        channel = ChannelState(0, a.on, toggle_at=a.pending.due if a.pending else None,
                               overpower=a.overpower)  # fmt: skip
        meters: tuple[MeterReading, ...] = ()
        if a.online:
            power = a.power_w if a.on else 0.0
            meters = (MeterReading(0, a.voltage_v, a.current_a, power, 0.0, 1.0, 0.0,
                                   round(a.energy_base_wh + a.counter_wh, 3), 0.0),)  # fmt: skip
        return DeviceState(a.device.id, self.clock.now(), a.online, (channel,), meters,
                           extra={"mqtt_id": a.mqtt_id, "protocol": a.proto.name})  # fmt: skip

    def _summary(self, a: Adopted) -> dict[str, Json]:
        energy = round(a.energy_base_wh + a.counter_wh, 3)
        return {"power": round(a.power_w, 2), "energy_wh": energy,
                "voltage": a.voltage_v or None, "on": a.on}  # fmt: skip

    def _emit(
        self, a: Adopted, kind: StatusKind, reason: str, data: dict[str, Json],
        channel: int | None = None, *, record: bool = True, cmd: tuple[bool, str] | None = None,
    ) -> None:  # fmt: skip
        """Tell the engine; `cmd`: (group mode) the command's record id, and whether this
        worker ran the command (and so writes the record)."""
        now = self.clock.now()
        event = DeviceEvent(a.device.id, now, kind, reason, data, self._state(a), channel, record)
        if self.group is not None and record:
            if cmd is not None:
                rid = cmd[1]
            elif self._msg is not None:  # the records of a message: its elected worker's
                rid = self.group.namer.name(*self._msg, len(self._derived), event)
            else:  # what only this worker sees (a timer it armed): its own record
                rid = ""
            if rid:
                event = SharedEvent(a.device.id, now, kind, reason, data, event.state, channel,
                                    False, None, rid)  # fmt: skip
                if cmd is not None and cmd[0]:
                    self.group.recorder(event, rid)
                elif cmd is None:
                    self._derived.append((event, rid))
        for sink in self._sinks:
            sink(event)

    # --- the rest of the DeviceLink protocol ----------------------------------

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        return None  # the device answers over the broker

    async def simulate(self, device_id: int, action: SimAction) -> None:
        raise InvalidCommand("a real device cannot be simulated", field="device")

    def timeout_for(self, device_id: int) -> float | None:
        return None
