"""FFR groups and closed events as stored (meta `ffr:group/G`, `ffr:event:N`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchgear.core.ffr import DeviceTrace, Programme, from_json
from switchgear.core.model import Json


@dataclass
class Group:
    """Controllers enrolled in one programme with a contracted capacity."""

    id: int
    account_id: int
    name: str
    programme: Programme
    contracted_kw: float
    device_ids: list[int]
    refused: list[dict[str, Json]]
    created_at: float
    previous: dict[int, Json] = field(default_factory=dict)  # FFR settings before enrolment

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
            "previous": {str(i): cfg for i, cfg in self.previous.items()},
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
            {int(i): cfg for i, cfg in (d.get("previous") or {}).items()},
        )


@dataclass
class ClosedEvent:
    """A judged event with the traces its evidence is computed from."""

    id: int
    group_id: int
    account_id: int
    programme: Programme
    crossed_at: float
    steps: list[tuple[float, float]]
    traces: list[DeviceTrace]
    report: dict[str, Json]
    gaps: list[tuple[float, float]] = field(default_factory=list)  # unobserved stretches

    def to_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "group_id": self.group_id,
            "account_id": self.account_id,
            "programme": self.programme.to_json(),
            "crossed_at": self.crossed_at,
            "steps": [list(s) for s in self.steps],
            "traces": [
                [
                    t.device_id,
                    t.before_w,
                    t.opened_at,
                    t.closed_at,
                    t.after_w,
                    [list(c) for c in t.changes],
                    t.resolution_s,
                ]
                for t in self.traces
            ],
            "report": self.report,
            "gaps": [list(g) for g in self.gaps],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClosedEvent:
        traces = []
        for t in d["traces"]:
            changes = tuple((a, b) for a, b in t[5]) if len(t) > 5 else ()
            resolution = float(t[6]) if len(t) > 6 else 0.0
            traces.append(DeviceTrace(t[0], t[1], t[2], t[3], t[4], changes, resolution))
        return cls(
            d["id"],
            d["group_id"],
            d["account_id"],
            from_json(d["programme"]),
            d["crossed_at"],
            [(a, b) for a, b in d["steps"]],
            traces,
            d["report"],
            [(a, b) for a, b in d.get("gaps", [])],
        )


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
