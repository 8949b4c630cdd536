"""Fast frequency response programmes as data, and the judgement of one event against one.

A programme is a row of PROGRAMMES (or an operator's custom row with the same fields).
`judge` turns what each device did during a frequency event into the report an
aggregator files; `evidence` gives the group's frequency and active power at the
programme's logging resolution. Both are pure: the caller gathers the traces.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from switchgear.core.model import Json
from switchgear.errors import InvalidInput

EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Programme:
    """A grid operator's FFR product: when loads must drop, how fast, and for how long."""

    id: str
    name: str
    nominal_hz: float
    threshold_hz: float  # activation when the frequency falls below this
    full_activation_s: float  # from the crossing to full activation, at most
    min_support_s: float  # the reduction held at least this long
    hold_until_recovery: bool = False  # held until the frequency is back above threshold
    max_support_s: float | None = None  # ...or this long, whichever comes first
    return_rule: str = ""
    resolution_s: float = 0.1  # logging: active power every resolution_s
    log_before_s: float = 10.0  # from this long before activation
    log_after_s: float = 900.0  # to this long after
    source: str = ""
    custom: bool = False

    def to_json(self) -> dict[str, Json]:
        return asdict(self)


_NORDIC_SOURCE = (
    "Fingrid, Svenska kraftnät, Statnett, Energinet: Technical Requirements for Fast "
    "Frequency Reserve Provision in the Nordic Synchronous Area (2021)"
)
_NORDIC_RETURN = (
    "the reduction is held for the support duration; the return ramp limits of the "
    "requirements are not modelled"
)
_ERCOT_SOURCE = (
    "ERCOT Nodal Protocols section 3.18 and 8.1.1.2.1 (Responsive Reserve, Fast "
    "Frequency Response): deploy at 59.85 Hz within 15 cycles, sustain until recalled "
    "or 15 minutes"
)


def _nordic(threshold: float, full: float, support: str, min_s: float) -> Programme:
    suffix = "" if support == "short" else "-long"
    return Programme(
        id=f"nordic-ffr-{threshold:g}{suffix}",
        name=f"Nordic FFR {threshold:g} Hz, {support} support",
        nominal_hz=50.0,
        threshold_hz=threshold,
        full_activation_s=full,
        min_support_s=min_s,
        return_rule=_NORDIC_RETURN,
        source=_NORDIC_SOURCE,
    )


PROGRAMMES: tuple[Programme, ...] = (
    *(
        _nordic(threshold, full, support, min_s)
        for support, min_s in (("short", 5.0), ("long", 30.0))
        for threshold, full in ((49.7, 1.3), (49.6, 1.0), (49.5, 0.7))
    ),
    Programme(
        id="ercot-ffr",
        name="ERCOT Fast Frequency Response",
        nominal_hz=60.0,
        threshold_hz=59.85,
        full_activation_s=0.25,
        min_support_s=0.0,
        hold_until_recovery=True,
        max_support_s=900.0,
        return_rule="held until recalled (the frequency is back above the threshold) "
        "or 15 minutes; the logging rule is not public: 100 ms is used",
        source=_ERCOT_SOURCE,
    ),
)
BY_ID = {p.id: p for p in PROGRAMMES}


def programme(spec: str | Mapping[str, Any]) -> Programme:
    """A preset by id, or a custom programme from its fields (InvalidInput otherwise)."""
    if isinstance(spec, str):
        found = BY_ID.get(spec)
        if found is None:
            raise InvalidInput(f"no programme {spec!r}", field="programme")
        return found
    return custom(spec)


def custom(d: Mapping[str, Any]) -> Programme:
    """An operator's own programme, checked field by field (a field it has not is refused)."""
    unknown = sorted(str(k) for k in d if k not in Programme.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"programme.{unknown[0]} is not a programme field", field="programme")

    def num(key: str, low: float, high: float, default: float | None = None) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidInput(f"programme.{key} must be a number", field=key)
        if not low <= v <= high:
            raise InvalidInput(f"programme.{key} must be within {low:g}..{high:g}", field=key)
        return float(v)

    nominal = num("nominal_hz", 45, 65)
    threshold = num("threshold_hz", nominal - 5, nominal - 0.05)
    hold = d.get("hold_until_recovery", False)
    if not isinstance(hold, bool):
        raise InvalidInput("programme.hold_until_recovery must be true or false", field="hold")
    name = d.get("name", "custom")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise InvalidInput("programme.name must be a short text", field="name")
    rule = d.get("return_rule", "held for the support duration")
    if not isinstance(rule, str) or not 0 < len(rule) <= 200:
        raise InvalidInput(
            "programme.return_rule must be a text of 1 to 200 characters", field="return_rule"
        )
    max_support = d.get("max_support_s")
    return Programme(
        id="custom",
        name=name,
        nominal_hz=nominal,
        threshold_hz=threshold,
        full_activation_s=num("full_activation_s", 0.01, 60),
        min_support_s=num("min_support_s", 0, 3600),
        hold_until_recovery=hold,
        max_support_s=None if max_support is None else num("max_support_s", 0, 3600),
        return_rule=rule,
        resolution_s=num("resolution_s", 0.01, 10, 0.1),
        log_before_s=num("log_before_s", 0, 600, 10.0),
        log_after_s=num("log_after_s", 1, 3600, 900.0),
        source="defined by the operator",
        custom=True,
    )


def from_json(d: Mapping[str, Any]) -> Programme:
    return Programme(**{k: d[k] for k in Programme.__dataclass_fields__ if k in d})


@dataclass(frozen=True, slots=True)
class DeviceTrace:
    """What one device did: its power at the crossing, when its relay opened and closed.

    `changes`, when given, is the device's power from the crossing on as (instant, W)
    steps: relay changes and the load's own (a thermostat's), exact for a twin, as
    reported for a device known by its reports. Without it the power is `before_w` until
    the relay opens, 0 until it closes, `after_w` after.
    """

    device_id: int
    before_w: float  # drawn at the crossing (0 with the relay already open)
    opened_at: float | None = None
    closed_at: float | None = None
    after_w: float = 0.0  # drawn once the relay closed again
    changes: tuple[tuple[float, float], ...] = ()
    resolution_s: float = 0.0  # 0: known at every instant; else the longest between reports

    def power_steps(self) -> list[tuple[float, float]]:
        """(from instant, W) steps of the device's power, the first from the crossing."""
        steps = [(-math.inf, self.before_w)]
        if self.changes:
            steps += sorted(self.changes, key=lambda c: c[0])  # (stable: same-instant order)
        elif self.opened_at is not None:
            steps.append((self.opened_at, 0.0))
            if self.closed_at is not None:
                steps.append((self.closed_at, self.after_w))
        return steps

    def shed_w(self) -> float:
        """The power the device drew just before its relay opened (0 if it never did)."""
        if self.opened_at is None:
            return 0.0
        w = self.before_w
        for at, watts in self.power_steps()[1:]:
            if at >= self.opened_at - EPS:
                break
            w = watts
        return max(w, 0.0)


def frequency_at(steps: Sequence[tuple[float, float]], t: float) -> float:
    """The frequency of a step trace (time, Hz) at t: the last step at or before t."""
    f = steps[0][1]
    for at, hz in steps:
        if at > t + EPS:
            break
        f = hz
    return f


def recovered_at(p: Programme, steps: Sequence[tuple[float, float]], crossed: float) -> float:
    """When the frequency was first back at or above the threshold after the crossing."""
    for at, hz in steps:
        if at > crossed + EPS and hz >= p.threshold_hz:
            return at
    return math.inf


def judge(
    p: Programme,
    contracted_kw: float,
    crossed_at: float,
    window_end: float,
    traces: Sequence[DeviceTrace],
    steps: Sequence[tuple[float, float]],
) -> dict[str, Json]:
    """The event report: per device and for the group, with the verdict and its reasons."""
    recovery = recovered_at(p, steps, crossed_at)
    devices: list[Json] = []
    reasons: list[str] = []
    late: list[int] = []
    short: list[int] = []
    idle: list[int] = []
    delivered_w = 0.0
    last_open: float | None = None
    for tr in sorted(traces, key=lambda t: t.device_id):
        response = None if tr.opened_at is None else tr.opened_at - crossed_at
        support = 0.0
        required = p.min_support_s
        had_w = tr.before_w if tr.opened_at is None else tr.shed_w()
        ok = tr.opened_at is not None and had_w > 0
        if tr.opened_at is not None:
            end = window_end if tr.closed_at is None else tr.closed_at
            support = end - tr.opened_at
            if p.hold_until_recovery:
                held = min(recovery, window_end) - tr.opened_at
                if p.max_support_s is not None:
                    held = min(held, p.max_support_s)
                required = max(required, held)
            on_time = response is not None and response <= p.full_activation_s + EPS
            if not on_time:
                late.append(tr.device_id)
                ok = False
            elif had_w > 0:
                delivered_w += had_w
            if had_w > 0:
                last_open = max(last_open or 0.0, response or 0.0)
            if support < required - EPS:
                short.append(tr.device_id)
                ok = False
        if had_w <= 0:
            idle.append(tr.device_id)
        devices.append(
            {
                "device_id": tr.device_id,
                "crossed_at": crossed_at,
                "opened_at": tr.opened_at,
                "closed_at": tr.closed_at,
                "response_s": _r(response),
                "shed_kw": round(had_w / 1000 if tr.opened_at is not None else 0.0, 3),
                "support_s": _r(support),
                "required_support_s": _r(required),
                "compliant": ok,
            }
        )
    by_id = {d["device_id"]: d for d in devices if isinstance(d, dict)}
    for i in late:
        resp = by_id[i]["response_s"]
        when = "never opened" if resp is None else f"responded in {resp:.3f} s"
        reasons.append(f"device {i} late: {when}, full activation is {p.full_activation_s:g} s")
    for i in short:
        reasons.append(
            f"device {i} support cut short: held {by_id[i]['support_s']:.3f} s, "
            f"{by_id[i]['required_support_s']:.3f} s required"
        )
    delivered_kw = round(delivered_w / 1000, 3)
    if delivered_kw < contracted_kw - EPS:
        note = f" (shed nothing: devices {', '.join(map(str, idle))})" if idle else ""
        reasons.append(
            f"under-delivery: {delivered_kw:g} kW delivered of {contracted_kw:g} kW "
            f"contracted{note}"
        )
    return {
        "programme": p.id,
        "started_at": crossed_at,
        "frequency_min_hz": min(hz for at, hz in steps if at <= window_end + EPS),
        "contracted_kw": contracted_kw,
        "delivered_kw": delivered_kw,
        "activation_s": _r(last_open),
        "compliant": not reasons,
        "reasons": reasons,
        "devices": devices,
    }


def evidence(
    p: Programme,
    crossed_at: float,
    traces: Sequence[DeviceTrace],
    steps: Sequence[tuple[float, float]],
) -> Iterator[tuple[float, float, float]]:
    """(time, frequency Hz, group active power kW) every resolution_s over the window."""
    changes: list[tuple[float, float]] = []
    power = 0.0
    for tr in traces:
        power += tr.before_w
        steps_w = tr.power_steps()
        for (_, was), (at, w) in itertools.pairwise(steps_w):
            if w != was:
                changes.append((at, w - was))
    changes.sort()
    start = crossed_at - p.log_before_s
    rows = round((p.log_before_s + p.log_after_s) / p.resolution_s)
    ci = si = 0
    f = steps[0][1]
    for i in range(rows + 1):
        t = start + i * p.resolution_s
        while ci < len(changes) and changes[ci][0] <= t + EPS:
            power += changes[ci][1]
            ci += 1
        while si < len(steps) and steps[si][0] <= t + EPS:
            f = steps[si][1]
            si += 1
        yield t, f, power / 1000


def unobserved(t: float, gaps: Sequence[tuple[float, float]]) -> bool:
    """Whether instant t falls in a stretch nobody observed (the server was down)."""
    tol = 1e-6  # above a float's step at epoch seconds: a row's time is a sum
    return any(a < t + tol and t < b - tol for a, b in gaps)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 6)
