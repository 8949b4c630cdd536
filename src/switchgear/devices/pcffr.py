"""The power controller's fast frequency response: trip on low frequency, return after."""

from __future__ import annotations

import random

from switchgear.core.model import Json, StatusKind
from switchgear.devices.pcbase import PcTwinBase
from switchgear.devices.relay import PendingFlip


class FfrResponse(PcTwinBase):
    """FFR: the trip, its log (with the grid step's held report) and the return."""

    def _grid_report(self) -> None:
        """The step's `update/grid`, or, with the FFR trip armed, its state held for the
        trip's report (same instant and state, reported with the trip's events)."""
        if ("ffr_trip" not in self._timers and not self._trip_unlogged) or not self.online:
            super()._grid_report()
            return
        self._grid_release()  # (a second step before the trip: the first's report goes)
        self._check_all()
        self._grid_held = (self.clock.now(), self.snapshot())

    def _grid_release(self) -> None:
        """Report the held `update/grid` (before the trip's events, or once no trip comes)."""
        held, self._grid_held = self._grid_held, None
        if held is not None:
            at, state = held
            self.emit(StatusKind.UPDATE, "grid", {}, record=False, at=at, state=state)

    def _ffr_watch(self, since: float | None = None) -> None:
        """Follow the frequency: arm the trip below the threshold, the return above the other.

        `since`: when the frequency changed (a grid step reaches every device at once).
        """
        cfg, state = self.config["ffr"], self.ffr
        now = self.clock.now()
        start = now if since is None else min(since, now)
        f = self.frequency(now)
        if not cfg["enabled"]:
            self._cancel("ffr_trip")
            self._grid_release()
            if state["tripped"]:
                self._ffr_returned(f, delay=0.0)
            return
        if not state["tripped"]:
            if f < float(cfg["tripThreshold"]):
                if "ffr_trip" not in self._timers:
                    cycle = 1.0 / self.model.nominal_frequency_hz
                    due = start + int(cfg["periods"]) * cycle  # the same for the whole fleet
                    self._arm("ffr_trip", due, self._ffr_trip, shared=True)
            else:
                self._cancel("ffr_trip")
                self._grid_release()  # the frequency came back before the trip
        elif f >= float(cfg["returnThreshold"]):
            backoff = random.Random(self.device.id * 1000 + state["events"]).random()
            self._ffr_returned(f, delay=float(cfg["delay"]) + backoff * float(cfg["maxBackOff"]))

    def _ffr_trip(self, _: object = None) -> None:
        """The trip: the relay opens now; the log and the re-planning follow (`soon`)."""
        timer = self._timers.pop("ffr_trip", None)
        c = self.relay
        now = self.clock.now()
        # the statuses carry the instant the trip was due (the step plus its grid cycles,
        # the same for the whole fleet), not when a busy process came to this timer
        at = min(timer.due, now) if timer is not None else now
        was_on = c.on
        self._trip_unlogged = True
        self.ffr.update(tripped=True, restore=was_on, events=int(self.ffr["events"]) + 1)
        relay = None
        if was_on:
            c.cancel()
            c.on = False
            self._supply(c, now)
            self._off_by = "ffr"
            self._arm_flip_back(c, "ffr")
            relay = self._relay_data(c, now)
        frequency = round(self.frequency(now), 3)
        self.soon(lambda: self._ffr_tripped(at, frequency, relay))

    def _ffr_tripped(self, at: float, frequency: float, relay: dict[str, Json] | None) -> None:
        """Log the trip as the controller does (trigger/ffr, relay/ffr) and re-plan."""
        c = self.relay
        self._trip_unlogged = False
        self._grid_release()  # the step's report goes first, in the same message
        state = self.snapshot()  # one instant, one state: a report carries it once
        self.emit(StatusKind.TRIGGER, "ffr", {"frequency": frequency}, 0, at=at, state=state)
        if relay is not None:
            self.emit(StatusKind.RELAY, "ffr", relay, 0, at=at, state=state)
            self._check(c)
            self._rearm()
        self.save()
        self._ffr_watch()

    def _ffr_returned(self, f: float, delay: float) -> None:
        """Frequency is back: log it and restore the load after `delay` (as `relay/auto`)."""
        restore = bool(self.ffr["restore"]) and not self.relay.on
        self.ffr.update(tripped=False, restore=False)
        self.emit(StatusKind.TRIGGER, "ffrr", {"frequency": round(f, 3)}, 0)
        c = self.relay
        if restore and delay > 0:
            c.arm(self.scheduler, PendingFlip(self.clock.now() + delay, True, "auto"), self._fire)
            self.emit(StatusKind.RELAY, "ffrr", self._relay_data(c), 0)
        elif restore:
            self.set_relay(c, True, "ffrr")
        self.save()
