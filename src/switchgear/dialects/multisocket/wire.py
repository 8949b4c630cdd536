"""The multisocket API's wire: plants, socket targeting, the status array, plug shapes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from switchgear.core.model import Device, DeviceState, Json
from switchgear.errors import InvalidInput

PARAMETER_KEYS = ("id", "name", "type")


@dataclass(frozen=True, slots=True)
class Socket:
    """One switchable socket of a strip: what the API calls a plug."""

    device: Device
    channel: int
    id: str
    name: str
    type: str


def sockets(device: Device, state: DeviceState) -> list[Socket]:
    return [
        Socket(device, c.index, f"{device.serial}-{c.index + 1}", c.name, c.kind)
        for c in state.channels
    ]


def check_plant_id(plant_id: str) -> str:
    try:
        return str(uuid.UUID(plant_id))
    except ValueError:
        raise InvalidInput("plantId must be a uuid", field="plantId") from None


def check_key(key: str) -> str:
    if key not in PARAMETER_KEYS:
        raise InvalidInput("parameterKey must be one of id, name, type", field="parameterKey")
    return key


def match(all_sockets: list[Socket], key: str, value: str) -> list[Socket]:
    """The sockets whose `key` equals `value` (names and types compare case-insensitively)."""
    if key == "id":
        found = [s for s in all_sockets if s.id == value]
    else:
        found = [s for s in all_sockets if getattr(s, key).casefold() == value.casefold()]
    return sorted(found, key=lambda s: s.id)


def parse_status(data: Any, matched: int) -> list[bool]:
    """One desired state per matched socket: one element applies to all, N to N in id order."""
    if not isinstance(data, dict) or "status" not in data:
        raise InvalidInput("A parameter is missing: status", field="status")
    status = data["status"]
    if not isinstance(status, list) or not all(isinstance(x, bool) for x in status):
        raise InvalidInput("status should be an array of booleans", field="status")
    if len(status) == 1:
        return status * matched
    if len(status) != matched:
        raise InvalidInput(
            f"status has {len(status)} elements for {matched} matched plugs "
            "(give one for all, or one per plug in id order)",
            field="status",
        )
    return list(status)


def plugs_body(matched: list[Socket], states: dict[int, DeviceState]) -> dict[str, Json]:
    out = []
    for s in matched:
        channels = states[s.device.id].channels
        on = channels[s.channel].on if s.channel < len(channels) else False
        out.append({"id": s.id, "name": s.name, "status": [on]})
    return {"plugs": out}
