"""A group's FFR capacity for the next 24 hours, hour by hour, from its devices' history.

Each device's `update` statuses carry the energy it drew over their period; the mean
power it drew in each hour of the day over the last week is what it could shed in that
hour (a heater whose thermostat is satisfied draws, and sheds, nothing). An hour with no
history counts the device's power now.
"""

from __future__ import annotations

from collections import defaultdict

from switchgear.core.model import Json, StatusKind
from switchgear.runtime import Runtime

HISTORY_S = 7 * 86_400
HOUR = 3600.0


async def forecast(
    rt: Runtime, account_id: int, power_now_w: dict[int, float]
) -> list[dict[str, Json]]:
    """24 rows `{"hour": ISO start of the hour, "available_kw"}`, from the next start of an hour."""
    now = rt.clock.now()
    energy: dict[tuple[int, int], float] = defaultdict(float)  # (device, hour of day) -> Wh
    seconds: dict[tuple[int, int], float] = defaultdict(float)
    cursor: str | None = None
    ids = list(power_now_w)
    while ids:
        page = await rt.engine.history(account_id, ids, now - HISTORY_S, now, cursor, 5000)
        for r in page.records:
            duration = r.data.get("duration")
            wh = r.data.get("power")
            if r.kind is not StatusKind.UPDATE or not isinstance(duration, int | float):
                continue
            if not isinstance(wh, int | float) or duration <= 0:
                continue
            hour = int(((r.ts - duration / 2) % 86_400) // HOUR)
            energy[(r.device_id, hour)] += float(wh)
            seconds[(r.device_id, hour)] += float(duration)
        cursor = page.next_cursor
        if cursor is None:
            break
    first = -(-now // HOUR) * HOUR  # this hour if it starts now, else the next
    rows: list[dict[str, Json]] = []
    for k in range(24):
        start = first + k * HOUR
        hour = int((start % 86_400) // HOUR)
        total = 0.0
        for i, w_now in power_now_w.items():
            s = seconds.get((i, hour), 0.0)
            total += energy[(i, hour)] * 3600 / s if s > 0 else w_now
        rows.append({"hour": start, "available_kw": round(total / 1000, 3)})
    return rows
