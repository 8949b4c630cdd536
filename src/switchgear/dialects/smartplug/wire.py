"""The smart-plug API's wire: parsing requests into core commands, rendering its shapes."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

from switchgear import jsontext
from switchgear.core.model import (
    Action,
    Command,
    Configure,
    Device,
    DeviceState,
    Json,
    PowerOn,
    SettingsPatch,
    Switch,
)
from switchgear.errors import InvalidCommand, InvalidInput

COMMANDS = ("switch_on_off", "default_switch", "max_power_turn_off", "auto_switch")
FIRMWARE = "V1SHTHF"
MAX_TIMEOUT_S = 86_400.0 * 365


def links(href: str) -> dict[str, Json]:
    return {"self": {"href": href}}


def _choice(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", field=name)
    return str(value)


def _number(data: dict[str, Any], name: str, maximum: float) -> float:
    value = data.get(name)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidInput(f"{name} must be a number", field=name) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number", field=name)
    if value < 0 or value > maximum:
        raise InvalidInput(f"{name} must be between 0 and {maximum:g}", field=name)
    return float(value)


def parse_send(data: dict[str, Any]) -> Command:
    """The core command for a `/provider/send` body (validated before anything happens)."""
    command = data.get("command")
    if command not in COMMANDS:
        raise InvalidCommand(f"command must be one of {', '.join(COMMANDS)}", field="command")
    if command == "switch_on_off":
        state = _choice(data, "state", ("on", "off"))
        return Switch(Action(state), 0)
    if command == "default_switch":
        state = _choice(data, "state", ("off", "on", "last"))
        return Configure(SettingsPatch(power_on=PowerOn(state)), 0)
    if command == "max_power_turn_off":
        watts = _number(data, "max_power", 1_000_000)
        patch = SettingsPatch(max_power_w=watts) if watts else SettingsPatch(clear_max_power=True)
        return Configure(patch, 0)
    # auto_switch: "on" engages after turning ON (auto-off), "off" after turning OFF (auto-on)
    state = _choice(data, "state", ("on", "off"))
    timeout = _number(data, "timeout", MAX_TIMEOUT_S)
    patch = SettingsPatch(auto_off_s=timeout) if state == "on" else SettingsPatch(auto_on_s=timeout)
    return Configure(patch, 0)


def _num(x: float) -> int | float:
    r = round(x, 2)
    return int(r) if r == int(r) else r


def fetch_body(state: DeviceState) -> dict[str, Json]:
    """An offline plug reports no power (`[]`): its last reading is not its power now."""
    power = [_num(m.power_w) for m in state.meters] if state.online else []
    return {
        "provider": {"online": state.online, "power": power},
        "_links": links("/v1/provider/fetch"),
    }


def fetch_json(state: DeviceState) -> bytes:
    """fetch_body as the bytes JsonResponse would send."""
    return jsontext.dumps(fetch_body(state))


def send_body(device: Device) -> dict[str, Json]:
    return {
        "provider": {"isok": True, "id": device.id, "type": "relay", "code": device.model},
        "_links": links("/v1/provider/send"),
    }


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def mac_of(device: Device) -> str:
    return hashlib.sha256(f"mac:{device.serial}".encode()).hexdigest()[:12].upper()


def controller(device: Device, state: DeviceState) -> dict[str, Json]:
    """A controller record as the service returns it (dates without a zone)."""
    on = bool(state.channels and state.channels[0].on)
    return {
        "serial_number": device.serial,
        "mac": mac_of(device),
        "firmware_version": FIRMWARE,
        "name": device.name,
        "type": "smart_plug",
        "room_id": None,
        "created": _date(device.created_at),
        "assigned_at": _date(device.created_at),
        "id": device.id,
        "online": state.online,
        "relay_state": on,
        "user_id": device.account_id,
        "brand_id": 1,
    }


def auth_body(access: str, ttl_s: float, refresh: str | None) -> dict[str, Json]:
    auth: dict[str, Json] = {
        "access_token": access,
        "expires_in": int(ttl_s),
        "token_type": "Bearer",
        "scope": None,
    }
    if refresh is not None:
        auth["refresh_token"] = refresh
    return {"auth": auth, "_links": links("/v1/auth/login" if refresh else "/v1/auth/renew")}


def auth_error(href: str, error: str, description: str) -> dict[str, Json]:
    """A failed grant, OAuth 2 style (`invalid_grant`, `invalid_client`, `invalid_request`)."""
    return {
        "auth": {"error": error, "error_description": description},
        "_links": links(href),
    }
