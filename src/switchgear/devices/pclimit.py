"""The power controller's power limit: `limit_power` caps the energy for a period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchgear.core.model import Json
from switchgear.core.pcconfig import Refused, number
from switchgear.devices.pcbase import PcTwinBase
from switchgear.devices.pcdata import MAX_AHEAD_S


class PowerLimit(PcTwinBase):
    """A running `limit_power`: the relay opens once the period's energy is used."""

    def _limit_power(self, params: Mapping[str, Any]) -> tuple[dict[str, Json], list[int]]:
        power, time = params.get("power"), params.get("time")
        if time == 0 or (power is None and time is None):  # `time: 0` ends a running limit
            self._limit_stop(restore=True)
            return {"powerLimit": None}, [122]
        p, t = number(power), number(time)
        if p is None or t is None or p < 0 or t <= 0 or t > MAX_AHEAD_S:
            raise Refused(-986)
        self._limit_start(p, t, "api")
        return {"powerLimit": {"power": p, "time": t}}, [115]

    def _limit_start(self, power_wh: float, seconds: float, reason: str) -> None:
        now = self.clock.now()
        self._limit_stop(restore=False)
        self.limit = {"power": power_wh, "ends_at": now + seconds, "start_wh": self.energy_wh()}
        self._arm("limit_end", now + seconds, self._limit_end)
        self.ffr["restore"] = False
        self.set_relay(self.relay, True, reason)

    def _limit_stop(self, *, restore: bool) -> None:
        was = self.limit
        self.limit = None
        self._cancel("limit_end")
        self._cancel("limit")
        if restore and was is not None and not self.relay.on and self._off_by == "power_limit":
            self.set_relay(self.relay, True, "auto")

    def _limit_end(self, _: object = None) -> None:
        self._timers.pop("limit_end", None)
        self._limit_stop(restore=True)
        self.save()

    def _limit_check(self, _: object = None) -> None:
        self._timers.pop("limit", None)
        limit = self.limit
        if limit is None:
            return
        if self.relay.on and self.energy_wh() - limit["start_wh"] >= limit["power"] - 1e-9:
            self.set_relay(self.relay, False, "power_limit")
            self.save()
        else:
            self._rearm()
