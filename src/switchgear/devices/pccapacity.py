"""The power controller's capacity: a stored-energy estimate that stops and restarts heating."""

from __future__ import annotations

from switchgear.devices.pcbase import PcTwinBase
from switchgear.devices.pcdata import CAPACITY_STEP_MAX_S, after_now


class Capacity(PcTwinBase):
    """The estimate, its thresholds, and when it next crosses one."""

    def _capacity_level(self) -> float:
        """The stored-energy estimate now (capacity units), from exact counters."""
        cfg = self.config["capacity"]
        heater = self.heater
        if not self.capacity or heater is None:
            return (float(cfg["maxCapacity"]) + float(cfg["minCapacity"])) / 2
        now = self.clock.now()
        heater.advance(now)
        b = self.capacity
        heated_wh = self.points[0].energy()[0] - b["wh"]
        litres = heater.litres - b["litres"] if self.config["flowmeter"]["type"] != "none" else 0
        idle_min = max((now - b["t"]) - (heater.heat_s - b["heat_s"]), 0.0) / 60
        level = (
            b["level"]
            + float(cfg["gainPerWattHour"]) * heated_wh
            - float(cfg["lossPerLiter"]) * litres
            - float(cfg["lossPerIdleMinute"]) * idle_min
        )
        return max(level, 0.0)

    def _capacity_rebase(self) -> None:
        heater = self.heater
        if heater is None:
            return
        level = self._capacity_level()
        self.capacity = {"level": level, "t": self.clock.now(), "wh": self.points[0].energy()[0],
                         "litres": heater.litres, "heat_s": heater.heat_s}  # fmt: skip

    def _capacity_check(self, _: object = None) -> None:
        self._timers.pop("capacity", None)
        cfg = self.config["capacity"]
        if not cfg["enabled"]:
            return
        self._capacity_rebase()
        level = self.capacity.get("level", 0.0)
        c = self.relay
        if c.on and level >= float(cfg["maxCapacity"]) - 1e-9:
            self.set_relay(c, False, "max_capacity")
            self.save()
        elif not c.on and level < float(cfg["minCapacity"]) + 1e-9 and self._curtailed():
            self.set_relay(c, True, "min_capacity")
            self.save()
        else:
            self._rearm()

    def _curtailed(self) -> bool:
        """Off by demand response or a timer (not by the user's plain `off`)."""
        return self._off_by != "api" or self.relay.pending is not None

    def _capacity_next(self) -> float:
        """When the estimate could next cross a threshold (rates are constant until then).

        Only a threshold ahead of the estimate, in the direction it moves, is a crossing:
        one already passed (on below the minimum, say) waits for the next change. The
        answer is always after now, by at least one step of the clock, so a re-check
        never repeats at the same instant.
        """
        cfg = self.config["capacity"]
        heater = self.heater
        now = self.clock.now()
        if heater is None:
            return now + CAPACITY_STEP_MAX_S
        level = self._capacity_level()
        flow = heater.flow(now) if self.config["flowmeter"]["type"] != "none" else 0.0
        draw = float(cfg["lossPerLiter"]) * flow / 60
        if heater.heating:
            rate = float(cfg["gainPerWattHour"]) * heater.element_w / 3600 - draw
        else:
            rate = -float(cfg["lossPerIdleMinute"]) / 60 - draw
        high, low = float(cfg["maxCapacity"]), float(cfg["minCapacity"])
        if rate > 0 and level < high:
            eta = (high - level) / rate
        elif rate < 0 and level > low:
            eta = (level - low) / -rate
        else:
            eta = CAPACITY_STEP_MAX_S
        due = now + min(eta, CAPACITY_STEP_MAX_S)
        change = heater.next_change()
        if change is not None and change > now:
            due = min(due, change)
        return after_now(now, due)
