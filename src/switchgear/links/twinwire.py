"""The wire protocol of simulated devices on MQTT: topics, RPC methods and payloads per family.

Every simulated device in a `switchgear fleet` process is its own MQTT client. A plug
(SHPLG-1) lives under Shelly Gen1's `shellies/<id>/` prefix and also speaks Gen1's topics;
every family takes JSON-RPC frames in Shelly Gen2's framing on `<prefix>/rpc` with its own
methods, and reports each event as a `NotifyEvent` on `<prefix>/events/rpc`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from switchgear import errors
from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import (
    Action,
    Command,
    CommandResult,
    Configure,
    Device,
    DeviceEvent,
    DeviceState,
    Family,
    FirmwareCommand,
    Json,
    PowerOn,
    Refresh,
    SettingsPatch,
    StatusKind,
    Switch,
    plain,
)
from switchgear.core.ports import SimAction, Store


@dataclass(frozen=True)
class Wire:
    """One family's place on the broker: its MQTT id, topic prefix and method namespace."""

    methods: str  # `<methods>.Set`, `<methods>.SetConfig`, ...
    id_prefix: str  # the MQTT id is this plus digits of the device's serial hash
    id_digits: int
    upper: bool  # hex digits upper case (as a Gen1 device's MAC)
    topic_root: str  # "shellies/" for Gen1 topics, "" for Gen2-style ones
    gen1: bool  # also publishes/takes Shelly Gen1 relay topics


WIRES: dict[Family, Wire] = {
    Family.PLUG: Wire("Switch", "shellyplug-", 6, True, "shellies/", True),
    Family.STRIP: Wire("Strip", "sgstrip-", 12, False, "", False),
    Family.LOAD_CONTROLLER: Wire("PowerController", "sgpowerctl-", 12, False, "", False),
    Family.METER: Wire("Meter", "sgmeter-", 12, False, "", False),
    Family.GATEWAY: Wire("Gateway", "sggateway-", 12, False, "", False),
}

CONTROL_ADDED = "switchgear/fleet/added"  # the server: a simulated device was registered
CONTROL_GRID = "switchgear/fleet/grid"  # the server: an account's grid steps (or ends)
DEPLOYMENT_META = "deployment"  # meta row: the deployment's id, carried by its grid steps
SIM_METHODS: dict[str, str] = {  # SimAction.kind <-> method
    "power_cycle": "Sim.PowerCycle",
    "online": "Sim.SetOnline",
    "load": "Sim.SetLoad",
    "grid": "Sim.SetGrid",
}
STANDARD = ("Set", "SetConfig", "Refresh", "GetStatus")
ERRORS: dict[str, type[errors.SwitchgearError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidInput, errors.InvalidCommand, errors.Conflict, errors.DeviceNotFound,
        errors.DeviceOffline, errors.CommandRejected, errors.DeviceError,
    )
}  # fmt: skip


def wire(device: Device) -> Wire:
    return WIRES[catalog_model(device.model).family]


ID_ATTR = "twin_mqtt_id"  # a twin's MQTT id chosen at registration (the derived one was taken)


def mqtt_id(device: Device) -> str:
    """The twin's MQTT id: the one chosen at its registration, else derived (`candidate`)."""
    return device.attrs.get(ID_ATTR) or candidate(device, 0)


def candidate(device: Device, attempt: int) -> str:
    """The `attempt`-th MQTT id a twin may take: digits of SHA-256(model/serial[/attempt])."""
    w = wire(device)
    key = f"{device.model}/{device.serial}" + (f"/{attempt}" if attempt else "")
    digits = hashlib.sha256(key.encode()).hexdigest()[: w.id_digits]
    return w.id_prefix + (digits.upper() if w.upper else digits)


def prefix(device: Device) -> str:
    """The device's topic prefix: `shellies/<id>` (plugs) or `<id>`."""
    return wire(device).topic_root + mqtt_id(device)


def online_topic(device: Device) -> str:
    return f"{prefix(device)}/online"


def rpc_topic(device: Device) -> str:
    return f"{prefix(device)}/rpc"


def events_topic(device: Device) -> str:
    return f"{prefix(device)}/events/rpc"


def shard_of(device: Device, shards: int) -> int:
    """The fleet shard serving the device: a gateway's meters go with their gateway."""
    key = device.attrs.get("gateway") or device.serial
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shards


# --- frames -----------------------------------------------------------------


def _default(obj: Any) -> Any:
    """What orjson does not encode itself: other mappings as objects, the rest as text."""
    return dict(obj) if isinstance(obj, Mapping) else str(obj)


def dumps(body: Any) -> bytes:
    """Compact JSON; dataclasses (a state, a reading) and enums encoded as `plain` gives
    them, without building the intermediate dicts (the hot reports' encoder)."""
    return orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(payload: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def request(rpc_id: int, src: str, method: str, params: dict[str, Json]) -> bytes:
    return dumps({"id": rpc_id, "src": src, "method": method, "params": params})


def answer(rpc_id: Any, src: str, dst: str, result: Json) -> bytes:
    return dumps({"id": rpc_id, "src": src, "dst": dst, "result": result})


def error_answer(rpc_id: Any, src: str, dst: str, err: errors.SwitchgearError) -> bytes:
    kind = type(err).__name__ if type(err).__name__ in ERRORS else "InvalidInput"
    body = {"code": 400, "message": err.message, "type": kind, "field": err.field}
    return dumps({"id": rpc_id, "src": src, "dst": dst, "error": body})


def raise_error(body: Any) -> None:
    """An RPC `error` as the error it stands for."""
    info = body if isinstance(body, dict) else {}
    cls = ERRORS.get(str(info.get("type")), errors.CommandRejected)
    message = str(info.get("message") or "the device refused the request")
    if issubclass(cls, errors.DeviceError):
        raise cls(message)
    raise cls(message, field=info.get("field"))


# --- commands -----------------------------------------------------------------


def encode_command(device: Device, cmd: Command) -> tuple[str, dict[str, Json]]:
    ns = wire(device).methods
    if isinstance(cmd, Switch):
        return f"{ns}.Set", plain(cmd)
    if isinstance(cmd, Configure):
        return f"{ns}.SetConfig", {"channel": cmd.channel, "patch": plain(cmd.patch)}
    if isinstance(cmd, Refresh):
        return f"{ns}.Refresh", {}
    return f"{ns}.{cmd.name}", dict(cmd.params)


def decode_command(device: Device, method: str, params: dict[str, Any]) -> Command | None:
    """The command a request stands for; None for GetStatus; InvalidInput if unknown."""
    ns, _, name = method.partition(".")
    if ns != wire(device).methods or not name:
        raise errors.InvalidCommand(f"unknown method {method!r}", field="method")
    if name == "Set":
        return Switch(Action(params["action"]), params.get("channel"),
                      float(params.get("delay") or 0.0), params.get("duration"))  # fmt: skip
    if name == "SetConfig":
        p = dict(params.get("patch") or {})
        if p.get("power_on") is not None:
            p["power_on"] = PowerOn(p["power_on"])
        return Configure(SettingsPatch(**p), params.get("channel"))
    if name == "Refresh":
        return Refresh()
    if name == "GetStatus":
        return None
    return FirmwareCommand(name, params)


def encode_result(result: CommandResult) -> dict[str, Json]:
    return {"ok": result.ok, "codes": list(result.codes), "data": plain(dict(result.data)),
            "error": result.error}  # fmt: skip


def decode_result(body: Any) -> CommandResult:
    r = body if isinstance(body, dict) else {}
    return CommandResult(bool(r.get("ok")), tuple(r.get("codes") or ()),
                         dict(r.get("data") or {}), r.get("error"))  # fmt: skip


# --- simulation -------------------------------------------------------------------


def encode_sim(action: SimAction) -> tuple[str, dict[str, Json]]:
    method = SIM_METHODS.get(action.kind)
    if method is None:
        raise errors.InvalidInput(f"unknown simulation {action.kind!r}", field="kind")
    return method, plain(action)


def decode_sim(params: dict[str, Any]) -> SimAction:
    return SimAction(
        str(params.get("kind")), params.get("online"), params.get("channel"),
        params.get("load"), params.get("frequency_hz"), params.get("voltage_v"),
    )  # fmt: skip


def grid_step(account_id: int, method: str, params: dict[str, Json], deployment: str) -> bytes:
    """A grid step (`Sim.SetGrid`) or its end (`Sim.ResetGrid`) for every fleet process of
    the deployment (another deployment's on the same broker ignore it)."""
    body = {"account_id": account_id, "method": method, "params": params}
    return dumps({**body, "deployment": deployment})


async def deployment_id(store: Store) -> str:
    """The deployment's id: made by the first process on its database, kept in its meta."""
    return str(await store.claim(DEPLOYMENT_META, secrets.token_hex(8)))


# --- events ------------------------------------------------------------------


def notify_event(src: str, ev: DeviceEvent) -> bytes:
    event = {"kind": ev.kind.value, "reason": ev.reason, "data": plain(dict(ev.data)),
             "channel": ev.channel, "record": ev.record, "topic": ev.topic,
             "state": ev.state.to_json()}  # fmt: skip
    return dumps({"src": src, "dst": "switchgear", "method": "NotifyEvent",
                  "params": {"ts": ev.ts, "event": event}})  # fmt: skip


def parse_event(device_id: int, payload: bytes) -> DeviceEvent | None:
    body = loads(payload)
    if body is None or body.get("method") != "NotifyEvent":
        return None
    params = body.get("params") or {}
    e = params.get("event") if isinstance(params, dict) else None
    if not isinstance(e, dict):
        return None
    try:
        state = DeviceState.from_json({**e["state"], "device_id": device_id})
        return DeviceEvent(
            device_id, float(params["ts"]), StatusKind(e["kind"]), str(e["reason"]),
            dict(e.get("data") or {}), state, e.get("channel"), bool(e.get("record", True)),
            e.get("topic"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


# --- several events of one device in one message (docs/device-protocol.md §3) --------

MAX_EVENTS = 32  # events one report message carries at most
KINDS = {k.value: k for k in StatusKind}  # an event's kind by its name (a lookup, no call)


def event_body(ev: DeviceEvent, with_state: bool = True) -> dict[str, Any]:
    """One event of a `NotifyEvent`'s `events` list; no `state`: the one before's."""
    body: dict[str, Any] = {"ts": ev.ts, "kind": ev.kind.value, "reason": ev.reason,
                            "data": ev.data, "channel": ev.channel,
                            "record": ev.record, "topic": ev.topic}  # fmt: skip
    if with_state:
        body["state"] = ev.state  # encoded by `dumps` as its `to_json()`
    return body


def notify_events(src: str, events: list[bytes]) -> bytes:
    """Events of one device, in order (each `dumps(event_body(...))`: kept encoded while
    queued, as compact as the message), as one `NotifyEvent` (`params.events`)."""
    head = dumps({"src": src, "dst": "switchgear", "method": "NotifyEvent"})[:-1]
    return head + b',"params":{"events":[' + b",".join(events) + b"]}}"


def parse_events(device_id: int, payload: bytes) -> list[DeviceEvent]:
    """The events of a `NotifyEvent`, one (`params.event`) or several (`params.events`);
    an event without `state` has the state of the one before it."""
    body = loads(payload)
    if body is None or body.get("method") != "NotifyEvent":
        return []
    params = body.get("params")
    if not isinstance(params, dict):
        return []
    if "events" not in params:
        one = parse_event(device_id, payload)
        return [] if one is None else [one]
    out: list[DeviceEvent] = []
    state: DeviceState | None = None
    items = params["events"]
    for e in items if isinstance(items, list) else ():
        try:
            if "state" in e or state is None:
                state = DeviceState.from_json({**e["state"], "device_id": device_id})
            out.append(DeviceEvent(
                device_id, float(e["ts"]), KINDS[e["kind"]], str(e["reason"]),
                dict(e.get("data") or {}), state, e.get("channel"), bool(e.get("record", True)),
                e.get("topic"),
            ))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return out  # the events before a malformed one stand
    return out
