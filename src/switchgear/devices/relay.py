"""A relay channel: its state, settings, over-power flag and one pending flip."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchgear.core.catalog import ChannelSpec
from switchgear.core.model import ChannelSettings, ChannelState, PowerOn, SettingsPatch, fast_init
from switchgear.core.scheduler import Scheduler, Timer
from switchgear.errors import InvalidInput

MAX_SECONDS = 10 * 365 * 86_400.0


@fast_init
@dataclass(frozen=True, slots=True)
class PendingFlip:
    """A switch due at an absolute time; `then_for` flips back that long after it;
    `flip_back`: armed by the auto-off / auto-on setting (cancelled when it is set to 0)."""

    due: float
    on: bool
    reason: str
    then_for: float | None = None
    flip_back: bool = False


def check_seconds(value: float | None, field: str, *, positive: bool = False) -> None:
    """A duration must be a finite number of seconds, >= 0 (or > 0)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number of seconds", field=field)
    if value < 0 or (positive and value == 0) or value > MAX_SECONDS:
        bound = "> 0" if positive else ">= 0"
        raise InvalidInput(f"{field} must be {bound} and at most ten years", field=field)


def check_patch(patch: SettingsPatch) -> None:
    """Validate a settings change before anything is applied."""
    check_seconds(patch.auto_off_s, "auto_off_s")
    check_seconds(patch.auto_on_s, "auto_on_s")
    if patch.power_on is not None and not isinstance(patch.power_on, PowerOn):
        raise InvalidInput("power_on must be off, on or last", field="power_on")
    w = patch.max_power_w
    if w is not None and (
        isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0
    ):
        raise InvalidInput("max_power_w must be a positive number of watts", field="max_power_w")


class RelayChannel:
    """One relay output of a device."""

    def __init__(self, index: int, spec: ChannelSpec, settings: ChannelSettings) -> None:
        self.index = index
        self.name = spec.name
        self.kind = spec.kind
        self.on = False
        self.settings = settings
        self.overpower = False
        self.pending: PendingFlip | None = None
        self._timer: Timer | None = None

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self.pending = None

    def arm(
        self, scheduler: Scheduler, flip: PendingFlip, fire: Callable[[RelayChannel], None]
    ) -> None:
        """Replace any pending flip with `flip`."""
        self.cancel()
        self.pending = flip
        self._timer = scheduler.call_at(flip.due, fire, self)

    def drop_disabled_flip_back(self) -> None:
        """A flip-back whose setting is now 0 (disabled) does not happen."""
        p = self.pending
        if p is not None and p.flip_back:
            delay = self.settings.auto_on_s if p.on else self.settings.auto_off_s
            if delay <= 0:
                self.cancel()

    def take_pending(self) -> PendingFlip | None:
        flip, self.pending, self._timer = self.pending, None, None
        return flip

    def boot_state(self) -> bool:
        """The state at power-on: off, on, or the last state before the power went."""
        return {PowerOn.OFF: False, PowerOn.ON: True, PowerOn.LAST: self.on}[self.settings.power_on]

    def toggle_in(self, now: float) -> float:
        return max(0.0, self.pending.due - now) if self.pending else 0.0

    def state(self) -> ChannelState:
        due = self.pending.due if self.pending else None
        return ChannelState(
            self.index, self.on, self.settings, due, self.overpower, self.name, self.kind
        )

    def to_json(self) -> dict[str, Any]:
        st, p = self.settings, self.pending
        s = {"power_on": st.power_on.value, "auto_off_s": st.auto_off_s,
             "auto_on_s": st.auto_on_s, "max_power_w": st.max_power_w}  # fmt: skip
        pending = None
        if p is not None:
            pending = {"due": p.due, "on": p.on, "reason": p.reason, "then_for": p.then_for}
            if p.flip_back:
                pending["flip_back"] = True
        return {"on": self.on, "overpower": self.overpower, "settings": s, "pending": pending}

    def restore(self, d: dict[str, Any]) -> None:
        self.on = bool(d["on"])
        self.overpower = bool(d.get("overpower", False))
        s = d["settings"]
        self.settings = ChannelSettings(
            power_on=PowerOn(s["power_on"]),
            auto_off_s=float(s["auto_off_s"]),
            auto_on_s=float(s["auto_on_s"]),
            max_power_w=s.get("max_power_w"),
        )
        p = d.get("pending")
        self.pending = PendingFlip(**p) if p else None
