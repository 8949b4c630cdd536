"""Physics of the simulated world: loads, the grid, and exact energy integration.

A load integrates its own energy exactly between state changes, so a year of virtual
time costs one step per change (a thermostat cycle), never one per second.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchgear.errors import InvalidInput

WH = 3600.0  # joules (watt-seconds) per watt-hour


@dataclass
class GridOverride:
    """The account's grid as set by the sim routes; None = the model's nominal value."""

    frequency_hz: float | None = None
    voltage_v: float | None = None
    changed_at: float | None = None  # when the last change happened: every device sees it then


def jitter(t: float, period: float, seed: float) -> float:
    """A deterministic wobble in [-1, 1]: readings look alive, tests stay exact."""
    return (
        math.sin(2 * math.pi * t / period + seed) * 0.7 + math.sin(t / (period * 0.37) + seed) * 0.3
    )


class Load:
    """A load behind a relay: its power while supplied, and its energy since it was attached."""

    kind = "load"
    power_factor: float = 1.0

    def __init__(self, t: float, supplied: bool = False) -> None:
        self.t = t  # time the state below is valid for
        self.supplied = supplied
        self.import_wh = 0.0
        self.export_wh = 0.0

    # subclasses implement these three ------------------------------------
    def _power_now(self) -> float:
        """Power at self.t while supplied (W; negative = export)."""
        raise NotImplementedError

    def _step(self, t: float) -> None:
        """Advance state and energy from self.t to t (no change of supply in between)."""
        raise NotImplementedError

    def next_change(self) -> float | None:
        """When power next changes by itself (given the current supply), if ever."""
        return None

    @property
    def peak_w(self) -> float:
        """The highest import power this load can draw (for the over-power check)."""
        raise NotImplementedError

    # shared ---------------------------------------------------------------
    def advance(self, t: float) -> None:
        if t > self.t:
            self._step(t)
            self.t = t

    def set_supplied(self, t: float, supplied: bool) -> None:
        self.advance(t)
        self.supplied = supplied

    def power(self, t: float) -> float:
        self.advance(t)
        return self._power_now() if self.supplied else 0.0

    def _add(self, watts: float, seconds: float) -> None:
        if watts >= 0:
            self.import_wh += watts * seconds / WH
        else:
            self.export_wh += -watts * seconds / WH

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "power_factor": self.power_factor,
            "state": {"t": self.t, "supplied": self.supplied,
                      "import_wh": self.import_wh, "export_wh": self.export_wh},
        }  # fmt: skip

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.t = float(state["t"])
        self.supplied = bool(state["supplied"])
        self.import_wh = float(state["import_wh"])
        self.export_wh = float(state["export_wh"])


class ConstantLoad(Load):
    """A steady load (a lamp, a heater without thermostat); negative watts export."""

    kind = "constant"

    def __init__(self, t: float, watts: float, power_factor: float = 1.0) -> None:
        super().__init__(t)
        self.watts = watts
        self.power_factor = power_factor

    def _power_now(self) -> float:
        return self.watts

    def _step(self, t: float) -> None:
        if self.supplied:
            self._add(self.watts, t - self.t)

    @property
    def peak_w(self) -> float:
        return max(self.watts, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "watts": self.watts}


class GenerationLoad(ConstantLoad):
    """A PV feed: exports `watts` while connected."""

    kind = "generation"

    def __init__(self, t: float, watts: float, power_factor: float = 1.0) -> None:
        super().__init__(t, -abs(watts), power_factor)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "watts": -self.watts}


class CyclingLoad(Load):
    """A compressor-style load: `watts` for `on_s`, then nothing for `off_s`, repeating."""

    kind = "cycling"

    def __init__(
        self, t: float, watts: float, on_s: float, off_s: float, power_factor: float = 1.0,
        anchor: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(t)
        if on_s <= 0 or off_s < 0:
            raise InvalidInput("on_s must be > 0 and off_s >= 0", field="load")
        self.watts, self.on_s, self.off_s = watts, on_s, off_s
        self.power_factor = power_factor
        self.anchor = t if anchor is None else anchor

    @property
    def period(self) -> float:
        return self.on_s + self.off_s

    def _on_time(self, t: float) -> float:
        """Seconds of on-phase in [anchor, t]."""
        full, rest = divmod(t - self.anchor, self.period)
        return full * self.on_s + min(rest, self.on_s)

    def _power_now(self) -> float:
        return self.watts if (self.t - self.anchor) % self.period < self.on_s else 0.0

    def _step(self, t: float) -> None:
        if self.supplied:
            self._add(self.watts, self._on_time(t) - self._on_time(self.t))

    def next_change(self) -> float | None:
        if self.off_s == 0:
            return None
        phase = (self.t - self.anchor) % self.period
        edge = self.on_s if phase < self.on_s else self.period
        return self.t + (edge - phase)

    @property
    def peak_w(self) -> float:
        return max(self.watts, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "watts": self.watts, "on_s": self.on_s,
                "off_s": self.off_s, "anchor": self.anchor}  # fmt: skip


class ThermostatLoad(Load):
    """A resistive water heater: element power ∝ V², a tank that heats, loses heat, is drawn.

    The element heats while supplied and the thermostat calls for heat (below
    setpoint - hysteresis it closes, at the setpoint it opens). Hot water is drawn on a
    daily profile of (start hour, end hour, litres per minute) windows, replaced by
    inlet-temperature water. Temperatures follow the exact exponential solution, so each
    phase (between thermostat and draw edges) is one step.
    """

    kind = "thermostat"

    def __init__(
        self, t: float, rated_watts: float, tank_litres: float = 190.0,
        setpoint_c: float = 60.0, hysteresis_c: float = 5.0, ambient_c: float = 20.0,
        loss_w_per_k: float = 2.5, temperature_c: float | None = None,
        nominal_v: float = 240.0, voltage_v: float | None = None,
        draws: Sequence[Sequence[float]] = (), inlet_c: float = 12.0,
    ) -> None:  # fmt: skip
        super().__init__(t)
        if rated_watts <= 0 or tank_litres <= 0 or loss_w_per_k <= 0 or hysteresis_c <= 0:
            raise InvalidInput("thermostat parameters must be positive", field="load")
        self.rated_watts, self.tank_litres = rated_watts, tank_litres
        self.setpoint_c, self.hysteresis_c = setpoint_c, hysteresis_c
        self.ambient_c, self.loss_w_per_k = ambient_c, loss_w_per_k
        self.nominal_v = nominal_v
        self.voltage_v = nominal_v if voltage_v is None else voltage_v
        self.temp_c = setpoint_c - hysteresis_c / 2 if temperature_c is None else temperature_c
        self.calling = self.temp_c < setpoint_c
        self.draws = check_draws(draws)
        self._edges = sorted({h * 3600.0 for start, end, _ in self.draws for h in (start, end)})
        self.inlet_c = inlet_c
        self._phase: tuple[float, float, float] | None = None  # (start, end, flow) cache
        self.litres = 0.0  # hot water drawn since attached
        self.heat_s = 0.0  # seconds the element heated since attached

    @property
    def element_w(self) -> float:
        return self.rated_watts * (self.voltage_v / self.nominal_v) ** 2

    @property
    def heat_capacity(self) -> float:
        return self.tank_litres * 4186.0  # J/K, a litre of water is a kilogram

    @property
    def heating(self) -> bool:
        return self.supplied and self.calling

    def flow(self, t: float) -> float:
        """Hot water drawn at time t, litres per minute."""
        hour = (t % 86_400.0) / 3600.0
        return sum(lpm for start, end, lpm in self.draws if start <= hour < end)

    def _flow_edge(self, t: float) -> float | None:
        """The first time after t the draw changes, if the profile has any draw."""
        if not self.draws:
            return None
        day = t - t % 86_400.0
        edges = self._edges  # sorted: the first one after t by bisection, not a scan
        i = bisect.bisect_right(edges, t - day)
        while i > 0 and day + edges[i - 1] > t:  # (rounding of t - day, either way)
            i -= 1
        while i < len(edges) and not day + edges[i] > t:
            i += 1
        return day + edges[i] if i < len(edges) else day + 86_400.0 + edges[0]

    def _power_now(self) -> float:
        return self.element_w if self.calling else 0.0

    def _coefficients(self, flow_lpm: float) -> tuple[float, float]:
        """(equilibrium temperature, W/K toward it) of the current phase."""
        draw_w_per_k = flow_lpm / 60.0 * 4186.0
        gain = self.element_w if self.heating else 0.0
        k = self.loss_w_per_k + draw_w_per_k
        return (self.loss_w_per_k * self.ambient_c + draw_w_per_k * self.inlet_c + gain) / k, k

    def _time_to(self, temp: float, eq: float, k: float) -> float | None:
        """Seconds until the tank reaches `temp` in a phase of these coefficients (None:
        never)."""
        a, b = self.temp_c - eq, temp - eq  # T(t) - eq = a * exp(-t k / C)
        if a == 0 or b == 0 or (a > 0) != (b > 0) or abs(b) > abs(a):
            return None
        return -self.heat_capacity / k * math.log(b / a)

    def _edge(self, flow_lpm: float, eq: float | None = None, k: float = 0.0) -> float | None:
        """Seconds until the thermostat flips, if it will in this phase (its coefficients
        if the caller has them)."""
        if self.supplied or not self.calling:
            if eq is None:
                eq, k = self._coefficients(flow_lpm)
            if self.heating:
                return self._time_to(self.setpoint_c, eq, k)
            if not self.calling:
                return self._time_to(self.setpoint_c - self.hysteresis_c, eq, k)
        return None  # calling but unsupplied: it stays calling

    def _evolve(self, dt: float, flow_lpm: float, eq: float, k: float) -> None:
        if self.heating:
            self._add(self.element_w, dt)
            self.heat_s += dt
        self.litres += flow_lpm * dt / 60.0
        self.temp_c = eq + (self.temp_c - eq) * math.exp(-k * dt / self.heat_capacity)

    def _draw_phase(self, t: float) -> tuple[float, float]:
        """(draw in litres/minute, when it next changes) at t; remembered for the phase."""
        phase = self._phase
        if phase is not None and phase[0] <= t < phase[1]:
            return phase[2], phase[1]
        end = self._flow_edge(t)
        if end is None:  # no draws at all: nothing ever changes
            self._phase = (t, math.inf, 0.0)
            return 0.0, math.inf
        flow = self.flow((t + end) / 2)  # inside the phase, robust to rounding at its edges
        self._phase = (t, end, flow)
        return flow, end

    def _step(self, t: float) -> None:
        now = self.t
        while now < t:
            flow, flow_end = self._draw_phase(now)
            stop = min(flow_end, t)
            eq, k = self._coefficients(flow)  # once per phase: the edge and the evolution
            edge = self._edge(flow, eq, k)
            if edge is None or now + edge >= stop:
                self._evolve(stop - now, flow, eq, k)
                now = stop
                continue
            self._evolve(edge, flow, eq, k)
            now += edge
            self.temp_c = self.setpoint_c if self.heating else self.setpoint_c - self.hysteresis_c
            self.calling = not self.calling

    def next_change(self) -> float | None:
        flow, end = self._draw_phase(self.t)  # the phase's draw and end, remembered
        edge = self._edge(flow)
        flow_edge = None if end == math.inf else end
        times = [x for x in (None if edge is None else self.t + edge, flow_edge) if x is not None]
        return min(times, default=None)

    @property
    def peak_w(self) -> float:
        return self.element_w

    def set_voltage(self, t: float, voltage_v: float) -> None:
        self.advance(t)
        self.voltage_v = voltage_v

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d.update(rated_watts=self.rated_watts, tank_litres=self.tank_litres,
                 setpoint_c=self.setpoint_c, hysteresis_c=self.hysteresis_c,
                 ambient_c=self.ambient_c, loss_w_per_k=self.loss_w_per_k,
                 nominal_v=self.nominal_v, voltage_v=self.voltage_v,
                 draws=[list(w) for w in self.draws], inlet_c=self.inlet_c)  # fmt: skip
        d["state"].update(
            temperature_c=self.temp_c, calling=self.calling, litres=self.litres,
            heat_s=self.heat_s,
        )  # fmt: skip
        return d

    def _restore(self, state: Mapping[str, Any]) -> None:
        super()._restore(state)
        self.temp_c = float(state["temperature_c"])
        self.calling = bool(state["calling"])
        self.litres = float(state.get("litres", 0.0))
        self.heat_s = float(state.get("heat_s", 0.0))


def check_draws(draws: Any) -> tuple[tuple[float, float, float], ...]:
    """A daily draw profile: [start hour, end hour, litres/min] windows within one day."""
    if not isinstance(draws, list | tuple):
        raise InvalidInput("draws must be a list of [start_h, end_h, L/min]", field="draws")
    out = []
    for w in draws:
        if (
            not isinstance(w, list | tuple)
            or len(w) != 3
            or any(isinstance(x, bool) or not isinstance(x, int | float) for x in w)
            or not all(math.isfinite(x) for x in w)
        ):
            raise InvalidInput("a draw is [start_h, end_h, litres_per_min]", field="draws")
        start, end, lpm = (float(x) for x in w)
        if not 0 <= start < end <= 24 or not 0 <= lpm <= 100:
            raise InvalidInput("a draw runs within one day at 0-100 L/min", field="draws")
        out.append((start, end, lpm))
    return tuple(sorted(out))


# A load description's numbers and the ranges they may take: what a real appliance and
# tank can be, and nothing that would make the simulation step faster than a second
# (a cycling load of 1e-9 s phases, a 1 ml tank) or overflow.
BOUNDS: dict[str, tuple[float, float]] = {
    "watts": (-1_000_000, 1_000_000),
    "rated_watts": (0, 1_000_000),
    "power_factor": (0, 1),
    "on_s": (1, 31_536_000),
    "off_s": (0, 31_536_000),
    "anchor": (-1e12, 1e12),
    "tank_litres": (1, 100_000),
    "setpoint_c": (0, 100),
    "hysteresis_c": (0.5, 50),
    "ambient_c": (-60, 60),
    "loss_w_per_k": (0.01, 1_000),
    "temperature_c": (-60, 150),
    "nominal_v": (1, 1_000),
    "voltage_v": (0, 1_000),
    "inlet_c": (0, 100),
}


def _num(d: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"load {key} must be a finite number", field=key)
    lo, hi = BOUNDS.get(key, (-math.inf, math.inf))
    if not lo <= value <= hi:
        raise InvalidInput(f"load {key} must be within {lo:g}..{hi:g}", field=key)
    return float(value)


def _optional(d: Mapping[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _num(d, key)


def load_from_json(d: Mapping[str, Any], t: float, nominal_v: float = 230.0) -> Load:
    """Build a load from its description (with its saved state, if any)."""
    if not isinstance(d, Mapping):
        raise InvalidInput("a load is an object with a type", field="load")
    kind = d.get("type", "constant")
    pf = _num(d, "power_factor", 1.0)
    if not 0 < pf <= 1:
        raise InvalidInput("power_factor must be in (0, 1]", field="power_factor")
    load: Load
    if kind == "constant":
        load = ConstantLoad(t, _num(d, "watts"), pf)
    elif kind == "generation":
        load = GenerationLoad(t, _num(d, "watts"), pf)
    elif kind == "cycling":
        load = CyclingLoad(t, _num(d, "watts"), _num(d, "on_s"), _num(d, "off_s"), pf,
                           anchor=_optional(d, "anchor"))  # fmt: skip
    elif kind == "thermostat":
        load = ThermostatLoad(
            t, _num(d, "rated_watts"), _num(d, "tank_litres", 190.0),
            _num(d, "setpoint_c", 60.0), _num(d, "hysteresis_c", 5.0),
            _num(d, "ambient_c", 20.0), _num(d, "loss_w_per_k", 2.5),
            temperature_c=_optional(d, "temperature_c"),  # the tank now (default: mid-band)
            nominal_v=_num(d, "nominal_v", nominal_v), voltage_v=_optional(d, "voltage_v"),
            draws=d.get("draws", ()), inlet_c=_num(d, "inlet_c", 12.0),
        )  # fmt: skip
    else:
        raise InvalidInput(f"unknown load type {kind!r}", field="type")
    if abs(load.peak_w) > 1_000_000:
        raise InvalidInput("load too large", field="watts")
    load.power_factor = pf
    if "state" in d:
        load._restore(d["state"])
    return load
