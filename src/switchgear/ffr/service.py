"""FFR aggregation: groups of enrolled controllers, their frequency events and reports.

Groups and events are durable in the store's `meta` table. An event opens when the
account's simulated grid crosses a group's threshold, or when an enrolled device known
by its reports (a fleet-process twin, a real device) reports its FFR trip; it closes
when the programme's logging window ends and its report is judged then (core/ffr.py).

Keys (meta): `ffr:group/G` (group G; `ffr:groups`, every group in one row as versions
before kept them, is moved to these at start), `ffr:member/D` (device D's group);
`ffr:id:N` (event id N, claimed; its summary
once closed); `ffr:crossing:G:MS` (group G's crossing at MS epoch milliseconds: the
event id, claimed once by whichever worker saw it first); `ffr:open:N` (a running
event's state), `ffr:seen:N` (until when it was observed); `ffr:event:N` (the report
and traces). `ffr:events` (the index before event ids were claimed) is still read.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from switchgear.core.ffr import evidence, judge
from switchgear.core.model import (
    Device,
    DeviceEvent,
    DeviceState,
    Json,
    StatusKind,
)
from switchgear.core.scheduler import Timer
from switchgear.devices.physics import GridOverride
from switchgear.errors import Conflict, InvalidInput, NotFound, NothingMatched, SwitchgearError
from switchgear.ffr.enrol import DEFAULT_PERIODS
from switchgear.ffr.live import OpenEvent
from switchgear.ffr.membership import (
    GROUPS_KEY,
    PEER_GROUP,
    EventInProgress,
    GroupNotFound,
    Membership,
    ffr_config,
)
from switchgear.ffr.model import ClosedEvent, Group, summary
from switchgear.ffr.replay import snapshot
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

EVENTS_KEY = "ffr:events"  # the index as it was kept before ids were claimed (read only)
EXTENSION = "ffr"
PREQUALIFY_HOLD_S = 30.0  # the test's hold: twice the support duration, at least this
HEARTBEAT_S = 1.0  # a running event's `ffr:seen:N` is written this often (virtual time)


class EventNotFound(NotFound):
    """FFR event not found."""


class FfrService(Membership):
    """Groups, live events and closed reports of every account on this server."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.worker = uuid.uuid4().hex  # tells this worker's claims from another's
        self.groups: dict[int, Group] = {}
        self.member: dict[int, int] = {}  # device id -> group id
        self.held: dict[int, int] = {}  # device id -> group id it is joining or leaving
        self.open: dict[int, OpenEvent] = {}  # group id -> its running event
        self.closed: dict[int, ClosedEvent] = {}
        self.index: dict[int, dict[str, Json]] = {}  # closed events' summaries by id
        self._next_id = 1  # the lowest event id not known to be taken
        self._unsettled: set[int] = set()  # ids allocated and not yet closed (any worker)
        self._last_f: dict[int, float] = {}  # group id -> the grid frequency it last saw
        self._power: dict[int, tuple[float, float]] = {}  # reported device -> (ts, W)
        self._dirty: set[int] = set()  # group ids whose open event awaits its save
        self._beat: Timer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    async def start(cls, rt: Runtime) -> FfrService:
        """Load the stored groups and events, resume running events, follow the grid and
        the devices."""
        svc = cls(rt)
        await svc._load_groups()
        await svc._load_events()
        rt.link.fleet.grid_observers.append(svc._grid_changed)
        rt.engine.link.attach(svc.device_event)
        rt.extensions[EXTENSION] = svc
        rt.peers.on(PEER_GROUP, svc._peer_group)
        rt.spawn(svc._keep(), "ffr-keep")
        return svc

    @staticmethod
    def of(rt: Runtime) -> FfrService:
        svc = rt.extensions.get(EXTENSION)
        if not isinstance(svc, FfrService):
            raise SwitchgearError("FFR aggregation is not running")
        return svc

    async def settled(self) -> None:
        """Wait for the store work under way (claims, reports) to be done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.rt.journal.flush()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.rt.spawn(coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def power_w(self, device_id: int) -> float:
        """What the device draws now through its relay (the power an FFR trip would shed)."""
        twin = self.rt.link.fleet.get(device_id)
        if twin is not None and twin.online:  # asked of the twin's load: exact, and cheap
            return max(twin.points[0].load.power(self.rt.clock.now()), 0.0)
        state = self.rt.reading(device_id)
        return _drawn(state)

    def available_kw(self, g: Group) -> float:
        return round(sum(self.power_w(i) for i in g.device_ids) / 1000, 3)

    # --- prequalification -----------------------------------------------------

    async def prequalify(
        self, account_id: int, group_id: int, frequency_hz: float | None, hold_s: float | None
    ) -> OpenEvent:
        """The programme's test on the simulated grid: a step below the threshold, held,
        then back to nominal. The event it makes is reported as any other."""
        g = self.group(account_id, group_id)
        if g.id in self.open:
            raise Conflict("the group has an event running: wait for its report", field="group")
        p = g.programme
        f = round(p.threshold_hz - 0.1, 3) if frequency_hz is None else frequency_hz
        if not p.nominal_hz - 5 <= f < p.threshold_hz:
            raise InvalidInput(
                f"frequency_hz must be below the threshold {p.threshold_hz:g} Hz",
                field="frequency_hz",
            )
        hold = max(2 * p.min_support_s, PREQUALIFY_HOLD_S) if hold_s is None else hold_s
        await self.rt.set_grid(account_id, f, None, duration_s=hold)
        ev = self.open.get(g.id)
        if ev is None:  # (only a step from above the threshold opens one)
            raise Conflict("the grid was already below the threshold", field="frequency_hz")
        if ev.claim is not None:
            await ev.claim
        return ev

    # --- events: opening ------------------------------------------------------

    def _grid_changed(self, account_id: int, grid: GridOverride) -> None:
        now = self.rt.clock.now()
        for g in self.groups.values():
            if g.account_id != account_id:
                continue
            p = g.programme
            f = p.nominal_hz if grid.frequency_hz is None else grid.frequency_hz
            ev = self.open.get(g.id)
            if ev is not None:
                ev.steps.append((now, f))
                self._voltage_steps(ev, now)
                self._changed(ev)
            elif f < p.threshold_hz:
                self._open(g, now, f)
            self._last_f[g.id] = f

    def _reported(self, device_id: int) -> bool:
        """Whether the device is known by its reports (no twin in this process)."""
        return self.rt.link.fleet.get(device_id) is None

    def _open(self, g: Group, now: float, f: float, *, from_reports: bool = False) -> OpenEvent:
        p = g.programme
        before = self._last_f.get(g.id, p.nominal_hz)
        ev = OpenEvent(
            id=0,
            group=g,
            crossed_at=now,
            steps=[(now - p.log_before_s, before), (now, f)],
            before={},
            from_reports=from_reports,
            key=f"ffr:crossing:{g.id}:{round(now * 1000)}",
        )
        fleet = self.rt.link.fleet
        t = self.rt.clock.now()
        for i in g.device_ids:
            twin = fleet.get(i)
            if twin is not None and twin.online:
                load = twin.points[0].load
                ev.before[i] = max(load.power(t), 0.0)
                state = snapshot(load)
                if state is not None:
                    ev.loads[i] = state
            elif twin is None and i in self._power:
                ev.reported_at[i], ev.before[i] = self._power[i]
            else:
                ev.before[i] = self.power_w(i)
        self._voltage_steps(ev, now)
        ev.timer = self.rt.scheduler.call_at(ev.window_end, self._close, g.id)
        self.open[g.id] = ev
        ev.claim = self._spawn(self._claim(ev), f"ffr-claim-{g.id}")
        log.info("FFR event of group %s at %.3f Hz (crossing %.3f)", g.id, f, now)
        return ev

    def _voltage_steps(self, ev: OpenEvent, now: float) -> None:
        """A grid step sets a twin's heater to the voltage it sees then (its element power
        follows): kept for the replay."""
        if now < ev.crossed_at:  # (an event opened from a report, after the step)
            return
        fleet = self.rt.link.fleet
        for i in ev.loads:
            twin = fleet.get(i)
            if twin is not None:
                ev.voltages.setdefault(i, []).append((now, twin.voltage(now)))

    async def _claim(self, ev: OpenEvent) -> None:
        """Give the event its id, once across workers: the first to claim its crossing
        key records it; another that saw the same crossing follows it under that id."""
        store = self.rt.store
        n = self._next_id
        while await store.claim(f"ffr:id:{n}", ev.key) != ev.key:
            n += 1
        self._next_id = max(self._next_id, n + 1)
        won = await store.claim(ev.key, {"id": n, "worker": self.worker})
        assert isinstance(won, dict)
        ev.id = int(won["id"])
        ev.owner = won["worker"] == self.worker
        self._unsettled.add(ev.id)
        if ev.id != n:  # another worker had claimed this crossing: our id stays unused
            self.rt.journal.put_meta(f"ffr:id:{n}", {"void": ev.key})
        if ev.owner:
            self._save(ev)
            self._heartbeat_on()
        log.info("FFR event %s (%s, %s)", ev.id, ev.key, "recorded" if ev.owner else "follows")

    # --- events: progress -----------------------------------------------------

    def device_event(self, e: DeviceEvent) -> None:
        """The sink the links report to: every device event (a test feeds it a stream)."""
        i = e.device_id
        gid = self.member.get(i)
        if gid is None:
            return
        reported = self._reported(i)
        ev = self.open.get(gid)
        if ev is None and reported and e.reason == "ffr" and e.kind is not StatusKind.UPDATE:
            ev = self._open_from_report(self.groups[gid], e)
        if ev is not None and e.ts >= ev.crossed_at:
            self._follow(ev, e, reported)
        if reported:
            self._power[i] = (e.ts, _drawn(e.state))

    def _open_from_report(self, g: Group, e: DeviceEvent) -> OpenEvent:
        """A device's trip report opens the event: the crossing was `periods` grid cycles
        before its trip (the device's own setting)."""
        p = g.programme
        cfg = ffr_config(e.state)
        periods = cfg.get("periods", DEFAULT_PERIODS) if isinstance(cfg, dict) else None
        cycles = periods if isinstance(periods, int) else DEFAULT_PERIODS
        crossed = round(e.ts - cycles / p.nominal_hz, 6)
        f = e.data.get("frequency")
        hz = float(f) if isinstance(f, int | float) else p.threshold_hz
        ev = self._open(g, crossed, hz, from_reports=True)
        return ev

    def _follow(self, ev: OpenEvent, e: DeviceEvent, reported: bool) -> None:
        i = e.device_id
        if ev.from_reports and e.kind is StatusKind.TRIGGER and e.reason == "ffrr":
            f = e.data.get("frequency")
            if isinstance(f, int | float):
                ev.steps.append((e.ts, float(f)))
        if reported:
            ev.reports.setdefault(i, []).append((e.ts, _drawn(e.state)))
            ev.unsaved = True  # a plain report: saved with the next heartbeat
        if e.kind is StatusKind.RELAY:
            on = e.data.get("on")
            if on is False and e.reason == "ffr" and i not in ev.opened:
                ev.opened[i] = e.ts
                self._changed(ev)
            elif on is True and i in ev.opened and i not in ev.closed:
                w = _drawn(e.state) if reported else self.power_w(i)
                ev.closed[i] = (e.ts, w)
                self._changed(ev)

    def _changed(self, ev: OpenEvent) -> None:
        """Save the event's state once the instant's reports are all in."""
        if not ev.owner or ev.group.id in self._dirty:
            return
        self._dirty.add(ev.group.id)
        self.rt.scheduler.soon(self._save_dirty)

    def _save_dirty(self) -> None:
        for gid in list(self._dirty):
            ev = self.open.get(gid)
            if ev is not None:
                self._save(ev)
        self._dirty.clear()

    def _save(self, ev: OpenEvent) -> None:
        if ev.id:  # (before its claim the event has no key to be saved under)
            ev.unsaved = False
            self.rt.journal.put_meta(f"ffr:open:{ev.id}", ev.to_json(self.rt.clock.now()))

    def _heartbeat_on(self) -> None:
        if self._beat is None:
            self._beat = self.rt.scheduler.call_later(HEARTBEAT_S, self._heartbeat)

    def _heartbeat(self, _: object = None) -> None:
        """Note until when the running events were observed (what a restart will trust)."""
        self._beat = None
        owned = [ev for ev in self.open.values() if ev.owner and ev.id]
        for ev in owned:
            if ev.unsaved:
                self._save(ev)
            self.rt.journal.put_meta(f"ffr:seen:{ev.id}", self.rt.clock.now())
        if owned:
            self._heartbeat_on()

    async def _keep(self) -> None:
        """On a clean stop, note that the running events were observed until then."""
        try:
            await asyncio.Event().wait()
        finally:
            self._heartbeat()
            if self._beat is not None:
                self._beat.cancel()

    # --- events: closing ------------------------------------------------------

    def _close(self, group_id: int) -> None:
        ev = self.open.get(group_id)
        if ev is None:
            return
        if ev.claim is not None and not ev.claim.done():
            self._spawn(self._close_claimed(ev), f"ffr-close-{group_id}")
            return
        del self.open[group_id]
        self._record(ev)

    async def _close_claimed(self, ev: OpenEvent) -> None:
        if ev.claim is not None:
            await ev.claim
        if self.open.get(ev.group.id) is ev:
            del self.open[ev.group.id]
            self._record(ev)

    def _record(self, ev: OpenEvent) -> None:
        closed = self._judge(ev, ev.window_end)
        self.closed[closed.id] = closed
        self.index[closed.id] = summary(closed)
        self._unsettled.discard(closed.id)
        if not ev.owner:  # the worker that claimed the crossing writes the report
            return
        journal = self.rt.journal
        journal.put_meta(f"ffr:event:{closed.id}", closed.to_json())
        journal.put_meta(f"ffr:id:{closed.id}", {"key": ev.key, "summary": summary(closed)})
        journal.put_meta(f"ffr:open:{closed.id}", {})

    def _judge(self, ev: OpenEvent, window_end: float) -> ClosedEvent:
        g = ev.group
        p = g.programme
        traces = ev.traces(window_end)
        steps = list(ev.steps)
        report = judge(p, g.contracted_kw, ev.crossed_at, window_end, traces, steps)
        reported = [t for t in traces if t.device_id in ev.reported_at or t.resolution_s > 0]
        report["evidence"] = {
            "resolution_s": p.resolution_s,
            "power_resolution_s": max([p.resolution_s, *(t.resolution_s for t in traces)]),
            "exact_devices": len(traces) - len(reported),
            "reported_devices": len(reported),
            "unobserved": [{"from": a, "to": b} for a, b in ev.gaps],
            "closed_while_unobserved": list(ev.late_closes),
        }
        return ClosedEvent(
            ev.id,
            g.id,
            g.account_id,
            p,
            ev.crossed_at,
            steps,
            traces,
            {"id": ev.id, "group_id": g.id, **report},
            list(ev.gaps),
        )

    # --- events: reading ------------------------------------------------------

    async def event(self, account_id: int, event_id: int) -> ClosedEvent:
        """A closed event's report, or the running one's so far (`open`: true)."""
        for ev in self.open.values():
            if ev.id == event_id and ev.id and ev.group.account_id == account_id:
                live = self._judge(ev, self.rt.clock.now())
                live.report["open"] = True
                return live
        closed = self.closed.get(event_id)
        if closed is None:
            blob = await self.rt.store.meta(f"ffr:event:{event_id}")
            if isinstance(blob, dict) and blob:
                closed = self.closed[event_id] = ClosedEvent.from_json(blob)
        if closed is None or closed.account_id != account_id:
            raise EventNotFound("FFR event not found")
        return closed

    async def events(self, account_id: int, group_id: int | None) -> list[dict[str, Json]]:
        """The account's events (of one group), newest first; running ones included."""
        await self._scan()
        found = [
            e
            for e in self.index.values()
            if e["account_id"] == account_id and group_id in (None, e["group_id"])
        ]
        for ev in self.open.values():
            if ev.id and ev.group.account_id == account_id and group_id in (None, ev.group.id):
                live = summary(self._judge(ev, self.rt.clock.now()))
                found.append({**live, "open": True})
        out = [{k: v for k, v in e.items() if k != "account_id"} for e in found]
        return sorted(out, key=lambda e: e["id"], reverse=True)

    async def _load_events(self) -> None:
        """The index (the legacy blob, then every claimed id) and the running events."""
        legacy = await self.rt.store.meta(EVENTS_KEY) or []
        assert isinstance(legacy, list)
        for e in legacy:
            assert isinstance(e, dict)
            self.index[int(e["id"])] = e
        self._next_id = 1 + max(self.index, default=0)
        await self._scan()
        for n in sorted(self._unsettled):
            state = await self.rt.store.meta(f"ffr:open:{n}")
            if isinstance(state, dict) and state and state["group_id"] in self.groups:
                await self._resume(state)

    async def _scan(self) -> None:
        """Learn the ids claimed since (by any worker): closed ones join the index."""
        store = self.rt.store
        for n in sorted(self._unsettled):
            value = await store.meta(f"ffr:id:{n}")
            if isinstance(value, dict):  # closed (its summary), or void
                summary_ = value.get("summary")
                if isinstance(summary_, dict):
                    self.index[n] = summary_
                self._unsettled.discard(n)
        n = self._next_id
        while (value := await store.meta(f"ffr:id:{n}")) is not None:
            if isinstance(value, dict) and "summary" in value:
                summary_ = value["summary"]
                assert isinstance(summary_, dict)
                self.index[n] = summary_
            elif isinstance(value, str):
                self._unsettled.add(n)
            n += 1
        self._next_id = n

    async def _resume(self, state: dict[str, Any]) -> None:
        """Take a stored running event on after a restart: what was not observed meanwhile
        is a gap; relays found closed again closed at an unseen instant."""
        g = self.groups[state["group_id"]]
        if g.id in self.open:
            return
        ev = OpenEvent.from_json(state, g)
        seen = await self.rt.store.meta(f"ffr:seen:{ev.id}")
        until = max(ev.observed_until, float(seen) if isinstance(seen, int | float) else 0.0)
        now = self.rt.clock.now()
        end = min(now, ev.window_end)
        if end > until:
            ev.gaps.append((until, end))
        for i in g.device_ids:
            if i in ev.opened and i not in ev.closed and i in ev.before:
                state_now = self.rt.reading(i)
                if state_now.channels and state_now.channels[0].on:
                    ev.closed[i] = (min(until, ev.window_end), self.power_w(i))
                    ev.late_closes.append(i)
        f = self.rt.link.fleet.grid(g.account_id).frequency_hz
        hz = g.programme.nominal_hz if f is None else f
        if now < ev.window_end and ev.steps[-1][1] != hz:
            ev.steps.append((now, hz))
        self._last_f[g.id] = hz
        ev.owner = True
        self.open[g.id] = ev
        self._unsettled.add(ev.id)
        ev.timer = self.rt.scheduler.call_at(max(now, ev.window_end), self._close, g.id)
        self._save(ev)
        self._heartbeat_on()
        log.info("FFR event %s resumed; unobserved %.3f..%.3f", ev.id, until, end)

    @staticmethod
    def evidence(ev: ClosedEvent) -> Iterator[tuple[float, float, float]]:
        return evidence(ev.programme, ev.crossed_at, ev.traces, ev.steps)


def _drawn(state: DeviceState) -> float:
    """What a device's report says it draws through its relay (0 with the relay open)."""
    if not state.online or not state.channels or not state.channels[0].on:
        return 0.0
    return max(state.meters[0].power_w, 0.0) if state.meters else 0.0


def devices_of(rt: Runtime, account_id: int, ids: list[int] | None, tag: str | None) -> list[int]:
    """The device ids a group request names: the given ids, or the account's devices by tag.

    NothingMatched when they name no device: an empty group would be judged under-delivered
    at every event. Ids that name devices which cannot serve are refused one by one instead."""
    if ids is not None:
        if not ids:
            raise NothingMatched("no device matched: device_ids is empty", field="device_ids")
        return ids
    assert tag is not None
    found = [d.id for d in rt.engine.devices(account_id, tag=tag)]
    if not found:
        raise NothingMatched(
            f"no device matched: no device of the account has the tag {tag!r}", field="tag"
        )
    return found


__all__ = [
    "GROUPS_KEY",
    "ClosedEvent",
    "Device",
    "EventInProgress",
    "EventNotFound",
    "FfrService",
    "Group",
    "GroupNotFound",
    "devices_of",
]
