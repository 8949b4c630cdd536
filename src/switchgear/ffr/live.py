"""An FFR event while its logging window runs: what was observed so far, kept durable.

The state is stored (meta `ffr:open:N`) as it progresses — the crossing, each device's
power at it, relay-open and -close instants, the twins' loads to replay, the reported
devices' reports — so a restarted server resumes the event where it was. The stretches
nobody observed (the server was down) are kept as `gaps` and stated in the evidence.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from switchgear.core.ffr import DeviceTrace
from switchgear.core.model import Json
from switchgear.core.scheduler import Timer
from switchgear.ffr.model import Group
from switchgear.ffr.replay import replay


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
    loads: dict[int, Json] = field(default_factory=dict)  # twins' loads at the crossing
    voltages: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # (t, V)
    reports: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # (ts, W)
    reported_at: dict[int, float] = field(default_factory=dict)  # when `before` was reported
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (from, to) unobserved
    late_closes: list[int] = field(default_factory=list)  # relay closed at an unseen instant
    from_reports: bool = False  # opened by a device's trip report, not by the grid
    observed_until: float = 0.0
    key: str = ""  # the idempotency key: group and crossing instant
    owner: bool = True  # this worker writes the event's progress
    unsaved: bool = False  # reports came since the state was last saved
    timer: Timer | None = None
    claim: asyncio.Task[None] | None = None

    @property
    def window_end(self) -> float:
        return self.crossed_at + self.group.programme.log_after_s

    def traces(self, until: float) -> list[DeviceTrace]:
        """Each device's trace up to `until`: replayed for twins, as reported otherwise."""
        out = []
        for i, w in self.before.items():
            opened = self.opened.get(i)
            closed, after = self.closed.get(i, (None, 0.0))
            changes: tuple[tuple[float, float], ...] = ()
            resolution = 0.0
            if i in self.reported_at or i in self.reports:
                points = [(t, p) for t, p in self.reports.get(i, []) if t <= until]
                changes = tuple(points)
                times = [self.reported_at.get(i, self.crossed_at), *(t for t, _ in points)]
                times.append(max(until, times[-1]))
                resolution = round(max(b - a for a, b in itertools.pairwise(times)), 3)
            elif i in self.loads:
                supply = [] if opened is None else [(opened, False)]
                if closed is not None:
                    supply.append((closed, True))
                volts = self.voltages.get(i, ())
                changes = tuple(replay(self.loads[i], self.crossed_at, supply, until, volts))
            out.append(DeviceTrace(i, w, opened, closed, after, changes, resolution))
        return out

    def to_json(self, now: float) -> dict[str, Json]:
        return {
            "id": self.id,
            "group_id": self.group.id,
            "crossed_at": self.crossed_at,
            "key": self.key,
            "steps": [list(s) for s in self.steps],
            "before": [[i, w] for i, w in self.before.items()],
            "opened": [[i, t] for i, t in self.opened.items()],
            "closed": [[i, t, w] for i, (t, w) in self.closed.items()],
            "loads": [[i, s] for i, s in self.loads.items()],
            "voltages": [[i, [list(v) for v in vs]] for i, vs in self.voltages.items()],
            "reports": [[i, [list(r) for r in rs]] for i, rs in self.reports.items()],
            "reported_at": [[i, t] for i, t in self.reported_at.items()],
            "gaps": [list(g) for g in self.gaps],
            "late_closes": list(self.late_closes),
            "from_reports": self.from_reports,
            "observed_until": now,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], group: Group) -> OpenEvent:
        return cls(
            id=d["id"],
            group=group,
            crossed_at=d["crossed_at"],
            steps=[(a, b) for a, b in d["steps"]],
            before={i: w for i, w in d["before"]},
            opened={i: t for i, t in d["opened"]},
            closed={i: (t, w) for i, t, w in d["closed"]},
            loads={i: s for i, s in d["loads"]},
            voltages={i: [(a, b) for a, b in vs] for i, vs in d.get("voltages", [])},
            reports={i: [(a, b) for a, b in rs] for i, rs in d["reports"]},
            reported_at={i: t for i, t in d["reported_at"]},
            gaps=[(a, b) for a, b in d["gaps"]],
            late_closes=list(d.get("late_closes", [])),
            from_reports=bool(d.get("from_reports", False)),
            observed_until=d["observed_until"],
            key=d["key"],
        )
