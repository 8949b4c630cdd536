"""The power controller API's JSON: devices, statuses, answers, dates as the cloud writes them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import Device, DeviceState, Family, Json, StatusRecord
from switchgear.core.pcconfig import CODES
from switchgear.dialects.powercontroller.ids import address, device_id
from switchgear.errors import InvalidInput

# family -> (type.profile, type.desc): every device of the account is listed in this shape
PROFILES: dict[Family, tuple[str, str]] = {
    Family.LOAD_CONTROLLER: ("power-controller", "Power Controller"),
    Family.PLUG: ("smart-plug", "Smart Plug"),
    Family.STRIP: ("power-strip", "Power Strip"),
    Family.METER: ("energy-meter", "Energy Meter"),
    Family.GATEWAY: ("gateway", "Gateway"),
}
STATUS_TYPES = ("update", "relay", "trigger", "function")  # connection events stay native


def when(ts: float) -> str:
    """Whole seconds, milliseconds shown: "2018-07-02T00:13:14.000Z"."""
    return datetime.fromtimestamp(math.floor(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_when(text: str, name: str) -> float:
    """An ISO 8601 date or date-time (UTC unless it says otherwise), as epoch seconds."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date", field=name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def num(value: Json) -> Json:
    """Plain JSON numbers, integers where whole (60, not 60.0), all the way down; a whole
    number beyond 64 bits stays a float (JSON encoders refuse larger integers)."""
    if isinstance(value, float) and abs(value) < 2**63 and value == int(value):
        return int(value)
    if isinstance(value, Mapping):
        return {k: num(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [num(v) for v in value]
    return value


def state_name(shadow: DeviceState) -> str:
    """`Initializing` until the controller first connects, then `Active`."""
    return "Active" if shadow.ts else "Initializing"


def live_info(shadow: DeviceState) -> dict[str, Json]:
    """Readings from the shadow, for devices that keep no update status of this shape."""
    m = shadow.meters[0] if shadow.meters else None
    c = shadow.channels[0] if shadow.channels else None
    temp = shadow.temperature_c
    shown = math.floor(shadow.ts)  # the date shown: toggleIn counts from it
    return {
        "duration": 0,
        "current": round(sum(x.current_a for x in shadow.meters), 2),
        "voltage": round(m.voltage_v, 2) if m else None,
        "power": 0,  # Wh used over `duration`: none yet
        "temperature": round(temp * 9 / 5 + 32, 1) if temp is not None else None,
        "frequency": round(m.frequency_hz, 3) if m else None,
        "flow": None,
        "on": c.on if c else None,
        "toggleIn": round(max(0.0, c.toggle_at - shown)) if c and c.toggle_at else 0,
        "toggleAt": int(c.toggle_at) if c and c.toggle_at else None,
    }


def status_summary(shadow: DeviceState) -> dict[str, Json]:
    """The device's last known status: its last update, with the relay as it is now."""
    if not shadow.ts:
        return {"state": "Initializing"}
    last = shadow.extra.get("status") if isinstance(shadow.extra, Mapping) else None
    if isinstance(last, Mapping) and last:
        info = {k: v for k, v in last.items() if k != "date"}
        date = float(last["date"])
        if shadow.channels:
            c = shadow.channels[0]
            info["on"] = c.on
            # counted from the date shown (whole seconds): date + toggleIn = toggleAt
            shown = math.floor(date)
            info["toggleIn"] = round(max(0.0, c.toggle_at - shown)) if c.toggle_at else 0
            info["toggleAt"] = int(c.toggle_at) if c.toggle_at else None
    else:
        info, date = live_info(shadow), shadow.ts
    return {"state": "Active", "info": num(info), "date": when(date)}


def device_body(device: Device, shadow: DeviceState, detail: bool = False) -> dict[str, Json]:
    model = catalog_model(device.model)
    profile, desc = PROFILES[model.family]
    body: dict[str, Json] = {
        "id": device_id(device),
        "address": address(device),
        "sn": device.serial,
        "country": device.attrs.get("country", "US"),
        "type": {"id": model.code, "profile": profile, "desc": desc},
        "status": status_summary(shadow),
    }
    config = shadow.extra.get("config") if isinstance(shadow.extra, Mapping) else None
    if detail and isinstance(config, Mapping):
        body["info"] = num(dict(config))
    return body


# update fields the native history carries beyond the vendor's status document
NATIVE_ONLY = frozenset({"water_temperature", "capacity_level"})


def status_body(record: StatusRecord, api_id: str) -> dict[str, Json]:
    info = {k: v for k, v in record.data.items() if k not in NATIVE_ONLY}
    return {
        "id": record.id,
        "device": api_id,
        "deviceId": api_id,
        "date": when(record.ts),
        "state": "Active",
        "type": record.kind.value,
        "reason": record.reason,
        "info": num(info),
    }


def answer(reason: str, codes: list[int], update: Mapping[str, Json], ts: float) -> dict[str, Any]:
    """A synchronous answer: the device's function status and its codes."""
    text = "; ".join(CODES.get(c, str(c)) for c in codes) or "ok"
    replaced = update.get("replaced")
    if isinstance(replaced, Mapping):  # the relay keeps one pending toggle
        was = "on" if replaced.get("on") else "off"
        text += f"; replaces the pending {was} at {when(float(replaced['toggleAt']))}"
    return {
        "message": text[0].upper() + text[1:],
        "responseCodes": codes,
        "status": {
            "date": when(ts),
            "state": "Active",
            "type": "function",
            "reason": reason,
            "info": {"update": num(dict(update)), "responseCodes": codes},
        },
    }
