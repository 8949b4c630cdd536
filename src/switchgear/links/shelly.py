"""Shelly Gen1 and Gen2 over MQTT: topics and payloads to and from vendor-neutral reports.

Each generation is one row of `PROTOCOLS`; the link never branches on a generation, it
asks the row. Gen1 speaks plain topics (`shellies/<id>/relay/0` = `on`) and acknowledges
a command by publishing the relay's state; Gen2 speaks JSON-RPC (`<id>/rpc`) and answers
each request by its id.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

Publish = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Report:
    """What one device message says; None = not in this message."""

    online: bool | None = None
    on: bool | None = None
    overpower: bool = False
    power_w: float | None = None
    energy_wh: float | None = None  # the device's own counter (restarts at 0 after a boot)
    voltage_v: float | None = None
    current_a: float | None = None


@dataclass(frozen=True, slots=True)
class RpcAnswer:
    """A Gen2 device's answer to one request."""

    id: int
    result: Any = None
    error: str | None = None


class ShellyProtocol(Protocol):
    """One generation's MQTT dialect."""

    name: str  # the `protocol` of an adoption request
    model: str  # the catalogue model an adopted device gets
    acks_by_rpc: bool  # True: a command is answered by id; False: by the relay's state
    flips_back_itself: bool  # the device runs a timed switch's flip-back (toggle_after)
    mac_upper: bool  # its id's MAC digits on its topics: upper case (else lower case)

    def filters(self, mqtt_id: str) -> list[str]: ...
    def parse(self, mqtt_id: str, topic: str, payload: bytes) -> Report | None: ...
    def switch(
        self, mqtt_id: str, on: bool, flip_back_s: float | None, rpc_id: int, src: str
    ) -> list[Publish]: ...
    def refresh(self, mqtt_id: str, rpc_id: int, src: str) -> list[Publish]: ...


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Gen1:
    """Shelly Gen1 (SHPLG-1): `shellies/<id>/...` topics with plain-text payloads."""

    name = "shelly-gen1"
    model = "SHPLG-1"
    acks_by_rpc = False
    flips_back_itself = False  # no timed switch over MQTT: the server runs the flip-back
    mac_upper = True  # shellyplug-A1B2C3

    def filters(self, mqtt_id: str) -> list[str]:
        return [f"shellies/{mqtt_id}/online", f"shellies/{mqtt_id}/relay/0/#"]  # and relay/0

    def parse(self, mqtt_id: str, topic: str, payload: bytes) -> Report | None:
        rest = topic.removeprefix(f"shellies/{mqtt_id}/")
        text = payload.decode(errors="replace").strip().lower()
        if rest == "online":
            return Report(online=text == "true") if text in ("true", "false") else None
        if rest == "relay/0":
            if text in ("on", "off"):
                return Report(on=text == "on")
            return Report(on=False, overpower=True) if text == "overpower" else None
        if rest == "relay/0/power":
            power = _float(text)
            return None if power is None else Report(power_w=power)
        if rest == "relay/0/energy":  # watt-minutes since the device booted
            wm = _float(text)
            return None if wm is None or wm < 0 else Report(energy_wh=wm / 60.0)
        return None  # our own commands (relay/0/command) and what we do not read

    def switch(
        self, mqtt_id: str, on: bool, flip_back_s: float | None, rpc_id: int, src: str
    ) -> list[Publish]:
        return [(f"shellies/{mqtt_id}/relay/0/command", b"on" if on else b"off")]

    def refresh(self, mqtt_id: str, rpc_id: int, src: str) -> list[Publish]:
        return [(f"shellies/{mqtt_id}/command", b"update")]

    # the device's side (a simulated plug speaking Gen1)

    def report(
        self, mqtt_id: str, on: bool, overpower: bool, power_w: float, energy_wh: float
    ) -> list[Publish]:
        """What a Gen1 plug publishes about its relay and meter."""
        base = f"shellies/{mqtt_id}/relay/0"
        relay = b"overpower" if overpower else (b"on" if on else b"off")
        return [(base, relay), (f"{base}/power", f"{power_w:.2f}".encode()),
                (f"{base}/energy", str(round(energy_wh * 60)).encode())]  # fmt: skip

    def command_filters(self, mqtt_id: str) -> list[str]:
        """What a Gen1 plug listens to: its relay command and the update/announce asks."""
        return [f"shellies/{mqtt_id}/relay/0/command", f"shellies/{mqtt_id}/command",
                "shellies/command"]  # fmt: skip


class Gen2:
    """Shelly Gen2 (Plus/Pro): JSON-RPC on `<id>/rpc`, notifications on `<id>/events/rpc`."""

    name = "shelly-gen2"
    model = "SNPL-00112EU"
    acks_by_rpc = True
    flips_back_itself = True  # Switch.Set's toggle_after
    mac_upper = False  # shellyplusplugs-a8032ab12345

    def filters(self, mqtt_id: str) -> list[str]:
        return [f"{mqtt_id}/online", f"{mqtt_id}/events/rpc", f"{mqtt_id}/status/switch:0"]

    def parse(self, mqtt_id: str, topic: str, payload: bytes) -> Report | None:
        rest = topic.removeprefix(f"{mqtt_id}/")
        if rest == "online":
            text = payload.decode(errors="replace").strip().lower()
            return Report(online=text == "true") if text in ("true", "false") else None
        body = _json(payload)
        if body is None:
            return None
        if rest == "status/switch:0":
            return switch_report(body)
        if rest == "events/rpc" and body.get("method") in ("NotifyStatus", "NotifyFullStatus"):
            params = body.get("params")
            if isinstance(params, dict) and isinstance(params.get("switch:0"), dict):
                return switch_report(params["switch:0"])
        return None

    def switch(
        self, mqtt_id: str, on: bool, flip_back_s: float | None, rpc_id: int, src: str
    ) -> list[Publish]:
        params: dict[str, Any] = {"id": 0, "on": on}
        if flip_back_s:
            params["toggle_after"] = flip_back_s
        return [(f"{mqtt_id}/rpc", _rpc(rpc_id, src, "Switch.Set", params))]

    def refresh(self, mqtt_id: str, rpc_id: int, src: str) -> list[Publish]:
        return [(f"{mqtt_id}/rpc", _rpc(rpc_id, src, "Switch.GetStatus", {"id": 0}))]


# a device's own id: its model's name, then its MAC's last 6 or all 12 hex digits
DEVICE_ID = re.compile(r"^(shelly[a-z0-9-]*)-([0-9a-f]{6}|[0-9a-f]{12})$", re.IGNORECASE)


def canonical_mqtt_id(proto: ShellyProtocol, mqtt_id: str) -> str:
    """An MQTT id as the device spells it on its topics (which are case-sensitive): a
    device's own id, typed in another case, is that device; any other id as given."""
    m = DEVICE_ID.match(mqtt_id)
    if m is None:
        return mqtt_id
    return f"{m[1].lower()}-{m[2].upper() if proto.mac_upper else m[2].lower()}"


def fold(mqtt_id: str) -> str:
    """An MQTT id as adoption and the store's unique index compare it: ids differing in
    case only are one device's (ASCII, schemas.MQTT_ID: Python's lower() is SQLite's and
    PostgreSQL's)."""
    return mqtt_id.lower()


def _rpc(rpc_id: int, src: str, method: str, params: dict[str, Any]) -> bytes:
    frame = {"id": rpc_id, "src": src, "method": method, "params": params}
    return json.dumps(frame).encode()


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def switch_report(status: dict[str, Any]) -> Report:
    """A Gen2 `switch:0` status (whole or changed fields only) as a report."""
    output = status.get("output")
    energy = status.get("aenergy")
    total = _float(energy.get("total")) if isinstance(energy, dict) else None
    errors = status.get("errors")
    return Report(
        on=output if isinstance(output, bool) else None,
        overpower=isinstance(errors, list) and "overpower" in errors,
        power_w=_float(status.get("apower")),
        energy_wh=total,
        voltage_v=_float(status.get("voltage")),
        current_a=_float(status.get("current")),
    )


def rpc_answer(payload: bytes) -> RpcAnswer | None:
    """A frame on our `<src>/rpc` topic: the answer to one of our requests."""
    body = _json(payload)
    if body is None or not isinstance(body.get("id"), int) or isinstance(body.get("id"), bool):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return RpcAnswer(body["id"], error=str(error.get("message") or error.get("code")))
    return RpcAnswer(body["id"], result=body.get("result"))


PROTOCOLS: dict[str, ShellyProtocol] = {p.name: p for p in (Gen1(), Gen2())}
