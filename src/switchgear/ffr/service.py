"""FFR aggregation: groups of enrolled controllers, their frequency events and reports.

Groups and closed events are durable in the store's `meta` table (written through the
journal's group commit). An event opens when the account's simulated grid crosses a
group's threshold and closes when the programme's logging window ends; its report is
judged then (core/ffr.py) and kept with the traces its evidence is computed from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from switchgear.core.ffr import DeviceTrace, Programme, evidence, from_json, judge
from switchgear.core.model import (
    CommandState,
    Device,
    DeviceEvent,
    FirmwareCommand,
    Json,
    StatusKind,
)
from switchgear.core.scheduler import Timer
from switchgear.devices.physics import GridOverride
from switchgear.errors import Conflict, InvalidInput, NotFound, SwitchgearError
from switchgear.ffr.enrol import plan
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

GROUPS_KEY = "ffr:groups"
EVENTS_KEY = "ffr:events"
EXTENSION = "ffr"
PREQUALIFY_HOLD_S = 30.0  # the test's hold: twice the support duration, at least this


class GroupNotFound(NotFound):
    """FFR group not found."""


class EventNotFound(NotFound):
    """FFR event not found."""


@dataclass
class Group:
    id: int
    account_id: int
    name: str
    programme: Programme
    contracted_kw: float
    device_ids: list[int]
    refused: list[dict[str, Json]]
    created_at: float

    def to_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "programme": self.programme.to_json(),
            "contracted_kw": self.contracted_kw,
            "devices": list(self.device_ids),
            "refused": list(self.refused),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Group:
        return cls(
            d["id"],
            d["account_id"],
            d["name"],
            from_json(d["programme"]),
            d["contracted_kw"],
            list(d["devices"]),
            list(d["refused"]),
            d["created_at"],
        )


@dataclass
class OpenEvent:
    """An event whose logging window is still running: traces grow as devices report."""

    id: int
    group: Group
    crossed_at: float
    steps: list[tuple[float, float]]
    before: dict[int, float]
    opened: dict[int, float] = field(default_factory=dict)
    closed: dict[int, tuple[float, float]] = field(default_factory=dict)
    timer: Timer | None = None

    def traces(self) -> list[DeviceTrace]:
        return [
            DeviceTrace(i, w, self.opened.get(i), *self.closed.get(i, (None, 0.0)))
            for i, w in self.before.items()
        ]


@dataclass
class ClosedEvent:
    id: int
    group_id: int
    account_id: int
    programme: Programme
    crossed_at: float
    steps: list[tuple[float, float]]
    traces: list[DeviceTrace]
    report: dict[str, Json]

    def to_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "group_id": self.group_id,
            "account_id": self.account_id,
            "programme": self.programme.to_json(),
            "crossed_at": self.crossed_at,
            "steps": [list(s) for s in self.steps],
            "traces": [
                [t.device_id, t.before_w, t.opened_at, t.closed_at, t.after_w] for t in self.traces
            ],
            "report": self.report,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClosedEvent:
        return cls(
            d["id"],
            d["group_id"],
            d["account_id"],
            from_json(d["programme"]),
            d["crossed_at"],
            [(a, b) for a, b in d["steps"]],
            [DeviceTrace(*t) for t in d["traces"]],
            d["report"],
        )


class FfrService:
    """Groups, live events and closed reports of every account on this server."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.groups: dict[int, Group] = {}
        self.member: dict[int, int] = {}  # device id -> group id
        self.open: dict[int, OpenEvent] = {}  # group id -> its running event
        self.closed: dict[int, ClosedEvent] = {}
        self.event_index: list[dict[str, Json]] = []  # {"id", "group_id", "account_id"}
        self._next_event = 1
        self._last_f: dict[int, float] = {}  # group id -> the grid frequency it last saw

    @classmethod
    async def start(cls, rt: Runtime) -> FfrService:
        """Load the stored groups and events and follow the grid and the devices."""
        svc = cls(rt)
        for g in await rt.store.meta(GROUPS_KEY) or []:
            svc._add_group(Group.from_json(g))
        index = await rt.store.meta(EVENTS_KEY) or []
        assert isinstance(index, list)
        svc.event_index = index
        svc._next_event = 1 + max((int(e["id"]) for e in index), default=0)
        rt.link.fleet.grid_observers.append(svc._grid_changed)
        rt.link.attach(svc._device_event)
        rt.extensions[EXTENSION] = svc
        return svc

    @staticmethod
    def of(rt: Runtime) -> FfrService:
        svc = rt.extensions.get(EXTENSION)
        if not isinstance(svc, FfrService):
            raise SwitchgearError("FFR aggregation is not running")
        return svc

    def _add_group(self, g: Group) -> None:
        self.groups[g.id] = g
        for i in g.device_ids:
            self.member[i] = g.id

    def _save_groups(self) -> None:
        self.rt.journal.put_meta(GROUPS_KEY, [g.to_json() for g in self.groups.values()])

    # --- groups ---------------------------------------------------------------

    async def create_group(
        self, account_id: int, name: str, p: Programme, contracted_kw: float, devices: list[int]
    ) -> Group:
        """Enrol the devices that can serve the programme; refuse the rest with reasons."""
        if not name or len(name) > 200:
            raise InvalidInput("name must be 1 to 200 characters", field="name")
        if not 0 < contracted_kw < 1e9:
            raise InvalidInput("contracted_kw must be a positive number", field="contracted_kw")
        gid = max(self.groups, default=0) + 1
        enrolled: list[int] = []
        refused: list[dict[str, Json]] = []
        for device_id in dict.fromkeys(devices):
            reason = await self._enrol(account_id, device_id, p)
            if reason is None:
                enrolled.append(device_id)
                self.member[device_id] = gid
            else:
                refused.append({"device_id": device_id, "reason": reason})
        g = Group(gid, account_id, name, p, contracted_kw, enrolled, refused, self.rt.clock.now())
        self._add_group(g)
        self._save_groups()
        await self.rt.journal.flush()
        return g

    async def _enrol(self, account_id: int, device_id: int, p: Programme) -> str | None:
        try:
            device = self.rt.engine.device(account_id, device_id)
        except NotFound:
            return "device not found"
        settings = plan(device, p, self.member.get(device_id))
        if isinstance(settings, str):
            return settings
        rec = await self.rt.engine.command(
            account_id, device.id, FirmwareCommand("pc.config", {"ffr": settings})
        )
        if rec.state is not CommandState.DONE:
            return f"the device did not take the settings: {rec.error or rec.state.value}"
        return None

    def group(self, account_id: int, group_id: int) -> Group:
        g = self.groups.get(group_id)
        if g is None or g.account_id != account_id:
            raise GroupNotFound("FFR group not found")
        return g

    def account_groups(self, account_id: int) -> list[Group]:
        return [g for g in self.groups.values() if g.account_id == account_id]

    def power_w(self, device_id: int) -> float:
        """What the device draws now through its relay (the power an FFR trip would shed)."""
        twin = self.rt.link.fleet.get(device_id)
        if twin is not None and twin.online:  # asked of the twin's load: exact, and cheap
            return max(twin.points[0].load.power(self.rt.clock.now()), 0.0)
        state = self.rt.reading(device_id)
        if not state.online or not state.channels or not state.channels[0].on:
            return 0.0
        return max(state.meters[0].power_w, 0.0) if state.meters else 0.0

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
        return ev

    # --- events ---------------------------------------------------------------

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
            elif f < p.threshold_hz:
                self._open(g, now, f)
            self._last_f[g.id] = f

    def _open(self, g: Group, now: float, f: float) -> None:
        p = g.programme
        before = self._last_f.get(g.id, p.nominal_hz)
        ev = OpenEvent(
            id=self._next_event,
            group=g,
            crossed_at=now,
            steps=[(now - p.log_before_s, before), (now, f)],
            before={i: self.power_w(i) for i in g.device_ids},
        )
        self._next_event += 1
        ev.timer = self.rt.scheduler.call_at(now + p.log_after_s, self._close, g.id)
        self.open[g.id] = ev
        log.info("FFR event %s of group %s at %.3f Hz", ev.id, g.id, f)

    def _device_event(self, e: DeviceEvent) -> None:
        if e.kind is not StatusKind.RELAY or e.device_id not in self.member:
            return
        ev = self.open.get(self.member[e.device_id])
        if ev is None or e.ts < ev.crossed_at:
            return
        i = e.device_id
        on = e.data.get("on")
        if on is False and e.reason == "ffr" and i not in ev.opened:
            ev.opened[i] = e.ts
        elif on is True and i in ev.opened and i not in ev.closed:
            ev.closed[i] = (e.ts, self.power_w(i))

    def _close(self, group_id: int) -> None:
        ev = self.open.pop(group_id, None)
        if ev is None:
            return
        closed = self._judge(ev, ev.crossed_at + ev.group.programme.log_after_s)
        self.closed[closed.id] = closed
        self.event_index.append(summary(closed))
        self.rt.journal.put_meta(f"ffr:event:{closed.id}", closed.to_json())
        self.rt.journal.put_meta(EVENTS_KEY, list(self.event_index))

    def _judge(self, ev: OpenEvent, window_end: float) -> ClosedEvent:
        g = ev.group
        traces = ev.traces()
        steps = list(ev.steps)
        report = judge(g.programme, g.contracted_kw, ev.crossed_at, window_end, traces, steps)
        return ClosedEvent(
            ev.id,
            g.id,
            g.account_id,
            g.programme,
            ev.crossed_at,
            steps,
            traces,
            {"id": ev.id, "group_id": g.id, **report},
        )

    async def event(self, account_id: int, event_id: int) -> ClosedEvent:
        """A closed event's report, or the running one's so far (`open`: true)."""
        for ev in self.open.values():
            if ev.id == event_id and ev.group.account_id == account_id:
                live = self._judge(ev, self.rt.clock.now())
                live.report["open"] = True
                return live
        closed = self.closed.get(event_id)
        if closed is None and any(e["id"] == event_id for e in self.event_index):
            blob = await self.rt.store.meta(f"ffr:event:{event_id}")
            if isinstance(blob, dict):
                closed = self.closed[event_id] = ClosedEvent.from_json(blob)
        if closed is None or closed.account_id != account_id:
            raise EventNotFound("FFR event not found")
        return closed

    def events(self, account_id: int, group_id: int | None) -> list[dict[str, Json]]:
        """The account's events (of one group), newest first; running ones included."""
        found = [
            e
            for e in self.event_index
            if e["account_id"] == account_id and group_id in (None, e["group_id"])
        ]
        for ev in self.open.values():
            if ev.group.account_id == account_id and group_id in (None, ev.group.id):
                live = summary(self._judge(ev, self.rt.clock.now()))
                found.append({**live, "open": True})
        out = [{k: v for k, v in e.items() if k != "account_id"} for e in found]
        return sorted(out, key=lambda e: e["id"], reverse=True)

    @staticmethod
    def evidence(ev: ClosedEvent) -> Iterator[tuple[float, float, float]]:
        return evidence(ev.programme, ev.crossed_at, ev.traces, ev.steps)


def summary(ev: ClosedEvent) -> dict[str, Json]:
    """An event as the list shows it (kept in the index: a list reads no report)."""
    r = ev.report
    keys = (
        "id",
        "group_id",
        "programme",
        "started_at",
        "frequency_min_hz",
        "contracted_kw",
        "delivered_kw",
        "activation_s",
        "compliant",
    )
    return {"account_id": ev.account_id, **{k: r[k] for k in keys}}


def devices_of(rt: Runtime, account_id: int, ids: list[int] | None, tag: str | None) -> list[int]:
    """The device ids a group request names: the given ids, or the account's devices by tag."""
    if ids is not None:
        return ids
    assert tag is not None
    return [d.id for d in rt.engine.devices(account_id, tag=tag)]


__all__ = ["Device", "EventNotFound", "FfrService", "Group", "GroupNotFound", "devices_of"]
