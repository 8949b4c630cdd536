"""Southbound to simulated devices served by `switchgear fleet` processes over MQTT.

Commands and simulation steps are JSON-RPC requests on the device's `<prefix>/rpc`; the
device's reports (`NotifyEvent` on `<prefix>/events/rpc`, one or several events of the
device with their states) keep the shadow; its retained `<prefix>/online` (a last will when
its process dies) says whether it is on the broker.

With a `group` (API workers sharing one database), every worker takes every report for
its shadows and its own subscribers, and the history records are written once: by the
worker the broker deals the report's copy to, among the group's shared subscriptions.
Each worker says on `<group>/recorders/<client id>` (retained; its last will clears it)
how it takes the reports:

    joining   its plain copies only (it records nothing yet)
    grouped   a plain copy of each report (its shadows) and its share of the shared copies
    lone      no other worker is there: the shared copy alone, for shadows and records
              (the broker sends each report once, not twice)

A lone worker goes `grouped` (its plain subscriptions back, SUBACKed) as soon as another
worker says anything; a joining worker takes shared copies only once no other worker is
`lone` (so no report dealt to it is missing from another's shadows); a grouped worker
left alone goes `lone`. The records never change hands: they come from the shared
subscriptions in every mode, so none is written twice or lost when workers come and go.

A worker killed while connected leaves no presence: the broker sends its will at once.
One that died while the broker was away (a broker restart keeps retained messages) or
whose host vanished leaves its last record; a joining worker waits JOIN_WAIT_S at most
for a `lone` one, saying whom it waits for. A live worker answers a joining one within a
round trip, and says its mode again after each reconnect; a `lone` record still there
LONE_STALE_S after (the broker's keepalive lease of a silent client) is no live worker's,
so the joining worker clears it: it delays no later start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from switchgear.core.clock import Clock
from switchgear.core.model import (
    Command,
    CommandResult,
    Device,
    DeviceEvent,
    DeviceState,
    SharedEvent,
    StatusKind,
    short_id,
)
from switchgear.core.ports import EventSink, SimAction
from switchgear.errors import DeviceOffline
from switchgear.links import twinwire as tw
from switchgear.links.leanmqtt import KEEPALIVE_S
from switchgear.links.mqttclient import MqttTransport

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Served:
    """What the server knows of one externally served twin."""

    device: Device
    online: bool | None = None  # None: not heard of since the server started
    # (group mode) the last `online` message taken and whether the device was online
    # before it, until its shared copy (if dealt here) decides the connection record
    flip: tuple[str, bool | None] | None = None
    elected: str | None = None  # a shared `online` copy that came before its own
    reports: int = 0  # report messages heard: one that came while a status ask was out wins
    plain: bool = False  # (group mode) its events topic plainly subscribed
    shared: bool = False  # (group mode) its topics among the group's shared subscriptions


Recorder = Callable[[DeviceEvent, str], None]
Parsed = list[tuple[DeviceEvent, str]]  # a report's events, each with its record id
PARSED_KEPT = 256  # reports whose events wait for their other copy (group mode)
JOIN_WAIT_S = 10.0  # a joining worker waits this long at most for a lone one to go grouped
LONE_STALE_S = KEEPALIVE_S * 1.5  # a lone record unanswered this long: no live worker's
JOINING, GROUPED, LONE = "joining", "grouped", "lone"


def presence_topic(group: str, client_id: str) -> str:
    """Where a worker of `group` says how it takes the reports (retained; will: empty)."""
    return f"{group}/recorders/{client_id}"


def record_ids(topic: str, payload: bytes, n: int) -> list[str]:
    """The ids every worker gives the records of a device message's first `n` events: the
    message's hash, then a hash of that and `k` for the `k`th (one hash of the message)."""
    digest = hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=9).digest()
    ids = [base64.urlsafe_b64encode(digest).decode()]
    for k in range(1, n):
        kth = hashlib.blake2b(digest + k.to_bytes(2, "big"), digest_size=9).digest()
        ids.append(base64.urlsafe_b64encode(kth).decode())
    return ids


class FleetLink:
    """A DeviceLink for simulated devices living in fleet processes."""

    def __init__(
        self,
        clock: Clock,
        transport: MqttTransport,
        answer_timeout_s: float,
        group: str | None = None,
    ) -> None:
        """`group`: share the writing of history with the other workers of this name."""
        self.clock = clock
        self.group = group
        self.recorder: Recorder | None = None  # group mode: where elected records go
        self.transport = transport
        self.answer_timeout_s = answer_timeout_s  # for simulation steps and status asks
        self.shadow: Callable[[int], DeviceState] = lambda i: DeviceState(i, 0.0, False)
        self.deployment = ""  # the deployment's id (twinwire.deployment_id), on grid steps
        self._sinks: list[EventSink] = []
        self._devices: dict[int, Served] = {}
        self._by_events: dict[str, Served] = {}
        self._by_online: dict[str, Served] = {}
        # rpc id -> device id, answer, whether the device leaving the broker fails it (a
        # simulation step is carried out by its fleet process whatever the network)
        self._rpc: dict[int, tuple[int, asyncio.Future[Any], bool]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._src = transport.client_id
        # group mode: a report comes twice to the worker dealt its shared copy, the two
        # copies one after the other; the first's parse serves the second
        self._parsed: dict[tuple[int, bytes], tuple[Parsed, bool]] = {}  # and if shared
        self._mode = JOINING  # (group mode) how this worker takes the reports, as said
        self._paired = True  # a plain events subscription may be up: a report may come twice
        self._presence = presence_topic(group or "", "")  # the group's presence topics
        self._others: dict[str, str] = {}  # the other workers of the group: their modes
        self._unheard: set[str] = set()  # others not heard again since a reconnect
        self._said: asyncio.Future[None] | None = None  # our own presence came back
        self._heard_all = False  # every presence before ours was heard
        self._blind = False  # ours never came back (off the broker): the safe mode, grouped
        self._settled = asyncio.Event()  # the mode is not `joining` any more
        self._up = asyncio.Event()  # connected to the broker
        self._settling: asyncio.Task[None] | None = None
        self._waited = False  # waited JOIN_WAIT_S for a lone worker: join anyway
        self._told_wait = False  # the log said why the start waits

    def attach(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    @property
    def mode(self) -> str | None:
        """How this worker takes the reports (group mode): joining, grouped or lone."""
        return None if self.group is None else self._mode

    def manages(self, device_id: int) -> bool:
        return device_id in self._devices

    async def start(self) -> None:
        self.transport.start(self._on_message, self._on_connection)
        await self.transport.subscribe(f"{self._src}/rpc")
        if self.group is not None:
            await self._join()

    async def add(self, device: Device) -> None:
        s = Served(device)
        self._devices[device.id] = s
        self._by_events[tw.events_topic(device)] = s
        self._by_online[tw.online_topic(device)] = s
        if self.group is None:
            await self.transport.subscribe(tw.events_topic(device))
        await self.transport.subscribe(tw.online_topic(device))  # retained: the answer now
        if self.group is not None:  # (a retained message goes to no shared subscription)
            await self._fit(s)

    # --- group mode: how this worker takes the reports ---------------------------

    async def _join(self) -> None:
        """Say `joining`, hear the others' presence, and settle the mode before any
        device is added."""
        await self.transport.subscribe(self._presence + "+")
        self._spawn(self._wait_for_lone())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.answer_timeout_s):
                await self._up.wait()
        await self._hear_all()
        await self._settled.wait()

    async def _hear_all(self) -> None:
        """Say our mode and wait for it to come back: the others' (retained) presence came
        before it. Then settle."""
        self._said = asyncio.get_running_loop().create_future()
        self._heard_all = False
        try:
            async with asyncio.timeout(self.answer_timeout_s):
                await self._say()
                await self._said
            for gone in self._unheard:  # left while we were off the broker
                self._others.pop(gone, None)
            self._blind = False
        except (DeviceOffline, TimeoutError):
            self._blind = True
        self._unheard = set()
        self._heard_all = True
        self._settle()

    async def _wait_for_lone(self) -> None:
        """Join after JOIN_WAIT_S whatever a lone worker does; clear the lone records
        still unanswered after LONE_STALE_S (their workers are dead)."""
        await asyncio.sleep(JOIN_WAIT_S)
        self._waited = True
        self._settle()
        lone = self._lone()
        if not lone:
            return
        log.warning("joined the group without workers %s, which said lone and did not "
                    "answer in %.0f s", ", ".join(lone), JOIN_WAIT_S)  # fmt: skip
        await asyncio.sleep(max(0.0, LONE_STALE_S - JOIN_WAIT_S))
        assert self.group is not None
        for who in self._lone():  # a live one answered, or said its mode on reconnecting
            log.warning("cleared the presence of worker %s: lone for %.0f s, unanswered "
                        "(it died while off the broker)", who, LONE_STALE_S)  # fmt: skip
            self._others.pop(who, None)
            with contextlib.suppress(DeviceOffline):
                await self.transport.publish(presence_topic(self.group, who), b"", retain=True)

    def _lone(self) -> list[str]:
        return sorted(who for who, mode in self._others.items() if mode == LONE)

    async def _say(self) -> None:
        assert self.group is not None
        await self.transport.publish(presence_topic(self.group, self._src),
                                     self._mode.encode(), retain=True)  # fmt: skip

    def _heard_presence(self, topic: str, payload: bytes) -> None:
        who, mode = topic[len(self._presence) :], payload.decode(errors="replace")
        if who == self._src:
            if self._said is not None and not self._said.done():
                self._said.set_result(None)
            return
        self._unheard.discard(who)
        if mode:
            self._others[who] = mode
        else:
            self._others.pop(who, None)
        self._settle()

    def _target(self) -> str | None:
        """The mode to take now (None: stay as is, waiting)."""
        if not self._heard_all:
            return None
        if self._blind:
            return GROUPED  # the others unheard: the mode that is right whoever is there
        if not self._others:
            return LONE
        if self._mode == JOINING and LONE in self._others.values() and not self._waited:
            if not self._told_wait:
                self._told_wait = True
                log.info("waiting up to %.0f s for workers %s, which said lone, to go grouped"
                         " (their shadows would miss the reports dealt here; a dead worker's"
                         " stale record is cleared later)", JOIN_WAIT_S,
                         ", ".join(self._lone()))  # fmt: skip
            return None  # a lone worker's shadows would miss what is dealt here
        return GROUPED

    def _settle(self) -> None:
        if self._settling is None or self._settling.done():
            self._settling = asyncio.get_running_loop().create_task(self._settle_all())

    async def _settle_all(self) -> None:
        """Take the target mode until it stays: subscriptions first, then say it."""
        try:
            while (target := self._target()) is not None and target != self._mode:
                self._mode = target
                if target != LONE:
                    self._paired = True  # before a plain copy can come back
                await asyncio.gather(*(self._fit(s) for s in list(self._devices.values())))
                if self._mode == LONE and not any(s.plain for s in self._devices.values()):
                    self._paired = False
                with contextlib.suppress(DeviceOffline):
                    await self._say()
        except Exception:
            log.exception("the group mode was not settled")
        if self._mode != JOINING:
            self._settled.set()

    async def _fit(self, s: Served) -> None:
        """A device's subscriptions as the mode wants them (shared ones, once made, stay)."""
        assert self.group is not None
        plain, shared = self._mode != LONE, self._mode != JOINING
        events, online = tw.events_topic(s.device), tw.online_topic(s.device)
        if plain != s.plain:
            s.plain = plain
            if plain:  # (not lone: `_paired` is set)
                await self.transport.subscribe(events)
            else:
                await self.transport.unsubscribe(events)
        if shared and not s.shared:
            s.shared = True
            await self.transport.share(self.group, events, self._on_shared)
            await self.transport.share(self.group, online, self._on_shared)

    async def announce(self, device: Device) -> None:
        """Tell the fleet processes a simulated device was registered."""
        with contextlib.suppress(DeviceOffline):
            await self.transport.publish(tw.CONTROL_ADDED, tw.dumps({"device_id": device.id}))

    async def close(self) -> None:
        if self.group is not None and self._said is not None:  # a clean leave, said at once
            with contextlib.suppress(DeviceOffline):
                await self.transport.publish(presence_topic(self.group, self._src), b"",
                                             retain=True)  # fmt: skip
        if self._settling is not None:
            self._settling.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.transport.close()

    # --- from the broker ------------------------------------------------------

    def _on_connection(self, up: bool) -> None:
        if up:
            self._up.set()
        else:
            self._up.clear()
        if self.group is not None and self._said is not None:  # our presence: its will cleared it
            if up:
                self._spawn(self._hear_all())
            else:
                self._heard_all, self._unheard = False, set(self._others)
        if not up:  # nothing is known until the retained `online` comes again
            for s in self._devices.values():
                self._offline(s, "the server lost the MQTT broker", record=False)
                s.online = None

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == f"{self._src}/rpc":
            body = tw.loads(payload)
            waiting = self._rpc.pop(body.get("id"), None) if body else None  # type: ignore[arg-type]
            if body is not None and waiting is not None and not waiting[1].done():
                waiting[1].set_result(body)  # a duplicate answer finds nothing: dropped
            return
        s = self._by_events.get(topic)
        if s is not None:
            if self.group is None:
                s.reports += 1
                for ev in tw.parse_events(s.device.id, payload):
                    self._report(s, ev)
                return
            self._copy(s, topic, payload, False)
            return
        if self.group is not None and topic.startswith(self._presence):
            self._heard_presence(topic, payload)
            return
        s = self._by_online.get(topic)
        if s is not None:
            text = payload.decode(errors="replace").strip().lower()
            if self.group is not None and text in ("true", "false"):
                self._flipped(s, text, s.online)
            if text == "true":
                was, s.online = s.online, True  # commands may go from now on
                self._spawn(self._ask_status(s, was))
            elif text == "false":
                self._offline(s, "the device left the broker", record=s.online is True)

    def _report(self, s: Served, ev: DeviceEvent) -> None:
        if ev.kind is StatusKind.CONNECTION:
            s.online = ev.state.online
        self._emit(ev)

    # --- group mode: the elected worker's records --------------------------------

    def _copy(self, s: Served, topic: str, payload: bytes, shared: bool) -> Parsed:
        """A copy of a report: its events go to the shadow and the sinks from whichever
        copy comes first (parsed once for both; a copy of the kind that came already is
        another report, a same one sent again)."""
        if self._paired:
            key = (s.device.id, payload)
            kept = self._parsed.pop(key, None)
            if kept is not None and kept[1] is not shared:  # the other copy: events went
                return kept[0]
            parsed = self._parse(topic, payload, s.device.id)
            self._parsed[key] = (parsed, shared)
            if len(self._parsed) > PARSED_KEPT:  # a copy dealt to another worker
                del self._parsed[next(iter(self._parsed))]
        else:  # lone: the only copy
            parsed = self._parse(topic, payload, s.device.id)
        s.reports += 1
        for ev, rid in parsed:
            if ev.record:
                ev = SharedEvent(
                    ev.device_id, ev.ts, ev.kind, ev.reason, ev.data, ev.state, ev.channel,
                    False, ev.topic, rid,
                )  # fmt: skip
            self._report(s, ev)
        return parsed

    @staticmethod
    def _parse(topic: str, payload: bytes, device_id: int) -> Parsed:
        """A report's events and the ids of their records."""
        events = tw.parse_events(device_id, payload)
        return list(zip(events, record_ids(topic, payload, len(events)), strict=True))

    def _on_shared(self, topic: str, payload: bytes) -> None:
        """This worker's share of the reports: the history records they make."""
        s = self._by_events.get(topic)
        if s is not None:
            parsed = self._copy(s, topic, payload, True)
            if self.recorder is not None:
                for ev, rid in parsed:
                    if ev.record:
                        self.recorder(ev, rid)
            return
        if self.recorder is None:
            return
        s = self._by_online.get(topic)
        if s is not None:
            text = payload.decode(errors="replace").strip().lower()
            if s.flip is not None and s.flip[0] == text:  # its plain copy came first
                _, was = s.flip
                s.flip = None
                self._record_flip(s, text, was)
            else:
                s.elected = text

    def _flipped(self, s: Served, text: str, was: bool | None) -> None:
        if s.elected == text:  # the shared copy came first: record here
            s.elected = None
            self._record_flip(s, text, was)
        else:
            s.flip = (text, was)

    def _record_flip(self, s: Served, text: str, was: bool | None) -> None:
        """The connection record of an `online` change (as one worker alone writes it)."""
        online = text == "true"
        if self.recorder is None or was is not (not online):
            return
        state = replace(self.shadow(s.device.id), online=online)
        reason = "online" if online else "offline"
        ev = DeviceEvent(s.device.id, self.clock.now(), StatusKind.CONNECTION, reason,
                         {"online": online}, state)  # fmt: skip
        self.recorder(ev, short_id())

    def _offline(self, s: Served, why: str, *, record: bool) -> None:
        for rpc_id, (device_id, fut, network) in list(self._rpc.items()):
            if device_id == s.device.id and network and not fut.done():
                del self._rpc[rpc_id]
                fut.set_exception(DeviceOffline(why))
        if s.online is not False:
            s.online = False
            state = replace(self.shadow(s.device.id), online=False)
            self._event(s, StatusKind.CONNECTION, "offline", {"online": False}, state,
                        record=record and self.group is None)  # fmt: skip

    async def _ask_status(self, s: Served, was: bool | None) -> None:
        """The device is on the broker: its whole state, and (if it was not online) the
        connection event carrying it; history records a return, not a server start."""
        method = f"{tw.wire(s.device).methods}.GetStatus"
        state: DeviceState | None = None
        reports = s.reports
        try:
            async with asyncio.timeout(self.answer_timeout_s):
                result = await self._call(s, method, {})
            state = DeviceState.from_json({**result, "device_id": s.device.id})
        except (DeviceOffline, TimeoutError, KeyError, TypeError, ValueError):
            pass
        known = self.shadow(s.device.id)
        if state is not None and (s.reports != reports or known.ts > state.ts):
            # a report came meanwhile (at the same virtual instant, or later): it is newer
            # than the answer, or as new (the device reports every change it makes)
            state = replace(known, online=True) if was is not True and s.online else None
        if was is not True and s.online:
            state = state or replace(self.shadow(s.device.id), online=True)
            self._event(s, StatusKind.CONNECTION, "online", {"online": True}, state,
                        record=was is False and self.group is None)  # fmt: skip
        elif state is not None:
            self._event(s, StatusKind.UPDATE, "device", {}, state, record=False)

    def _event(
        self, s: Served, kind: StatusKind, reason: str, data: dict[str, Any],
        state: DeviceState, *, record: bool,
    ) -> None:  # fmt: skip
        self._emit(DeviceEvent(s.device.id, self.clock.now(), kind, reason, data, state,
                               None, record))  # fmt: skip

    def _emit(self, ev: DeviceEvent) -> None:
        for sink in self._sinks:
            sink(ev)

    # --- requests ---------------------------------------------------------------

    async def _call(
        self, s: Served, method: str, params: dict[str, Any], network: bool = True
    ) -> Any:
        """One RPC: the device's `result`, or its `error` raised as the error it names."""
        rpc_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._rpc[rpc_id] = (s.device.id, fut, network)
        try:
            frame = tw.request(rpc_id, self._src, method, params)
            await self.transport.publish(tw.rpc_topic(s.device), frame)
            body = await fut
        finally:
            self._rpc.pop(rpc_id, None)
        if "error" in body:
            tw.raise_error(body["error"])
        return body.get("result")

    async def send(self, device_id: int, command: Command) -> CommandResult:
        s = self._devices.get(device_id)
        if s is None or s.online is not True or not self.transport.connected:
            raise DeviceOffline("device is offline")
        method, params = tw.encode_command(s.device, command)
        return tw.decode_result(await self._call(s, method, params))

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        return None  # the device answers over the broker

    async def simulate(self, device_id: int, action: SimAction) -> None:
        """A physical-world step, carried out by the process that runs the twin (also
        while the twin is off the network, but not while its process is down)."""
        s = self._devices[device_id]
        method, params = tw.encode_sim(action)
        try:
            async with asyncio.timeout(self.answer_timeout_s):
                await self._call(s, method, params, network=False)
        except TimeoutError:
            raise DeviceOffline("the fleet process serving this device did not answer") from None

    async def set_grid(
        self, account_id: int, frequency_hz: float | None, voltage_v: float | None
    ) -> None:
        """The account's grid steps: one message every fleet process takes for the account's
        devices it runs (a request to each device was 10,000 requests and answers for a
        10,000-device account: docs/performance.md, "Scale-out")."""
        params = {"frequency_hz": frequency_hz, "voltage_v": voltage_v, "at": self.clock.now()}
        await self._to_fleets(account_id, "Sim.SetGrid", params)  # at: one instant, all fleets

    async def reset_grid(self, account_id: int, frequency: bool, voltage: bool) -> None:
        """The end of a grid event: back to nominal frequency and/or voltage."""
        await self._to_fleets(account_id, "Sim.ResetGrid",
                              {"frequency": frequency, "voltage": voltage})  # fmt: skip

    async def _to_fleets(self, account_id: int, method: str, params: dict[str, Any]) -> None:
        try:
            await self.transport.publish(
                tw.CONTROL_GRID, tw.grid_step(account_id, method, params, self.deployment)
            )
        except DeviceOffline:
            log.warning("account %s missed %s: the server is off the broker", account_id, method)

    def timeout_for(self, device_id: int) -> float | None:
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
