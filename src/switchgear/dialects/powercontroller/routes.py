"""The Automate Green power controller API: sign-in, tokens, devices, commands,
configuration and statuses, as plain Starlette routes."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from switchgear.auth.clientaddr import client_address
from switchgear.auth.scopes import KIND_POWERCONTROLLER_TOKEN
from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import (
    CommandRecord,
    Device,
    Family,
    FirmwareCommand,
    StatusRecord,
)
from switchgear.core.pcconfig import Refused, plan_config
from switchgear.dialects.http import JsonResponse, plain_int, text_field
from switchgear.dialects.powercontroller import wire
from switchgear.dialects.powercontroller.access import Call, authenticated, body_of, runtime
from switchgear.dialects.powercontroller.countries import COUNTRIES
from switchgear.dialects.powercontroller.errors import mapped, message
from switchgear.dialects.powercontroller.ids import device_id, index
from switchgear.dialects.powercontroller.pending import OPS, pending
from switchgear.errors import (
    Conflict,
    CredentialNotFound,
    DeviceOffline,
    InvalidInput,
    TooLarge,
)
from switchgear.registration import admit
from switchgear.runtime import Runtime
from switchgear.storedtext import storable

TOKEN_TTL_S = 14 * 86_400.0  # `expires` defaults to two weeks
TOKEN_TTL_MAX_S = 10 * 365 * 86_400.0
ACTIVATION_S = 5.0  # a new controller's SIM activates and it connects this long after adding
SERIAL = re.compile(r"^PC-[A-Z0-9]{6,20}-\d{3}$")
SERIAL_REFUSED = "Invalid serial number"
MODEL = "power-controller-v10"
DAY = 86_400.0
MAX_RANGE_S = 10 * DAY
PAGE = 1000
PAGE_MAX = 10_000
ONE_DEVICE_MAX = 100_000  # one device's 10 days: ~1,000 updates at 900 s, 14,400 at 60 s


# --- sign-in and tokens -----------------------------------------------------------


@mapped
async def signin(request: Request) -> Response:
    """`user[email]`, `user[password]`, `expires`, `desc`, as a form or as JSON."""
    rt = runtime(request)
    body, _ = await body_of(request)
    user = body.get("user")
    if not isinstance(user, dict):
        raise InvalidInput("user[email] and user[password] are required", field="user")
    email, password = text_field(user, "email"), text_field(user, "password")
    ttl = _expires(body.get("expires"))
    desc = body.get("desc", "")
    if not isinstance(desc, str) or len(desc) > 200:
        raise InvalidInput("desc must be a string of at most 200 characters", field="desc")
    storable(desc, "desc")
    host = client_address(request, rt.settings.trusted_proxies)
    account = await rt.auth.login(email, password, client=host)
    _, token = await rt.auth.issue_jwt(account.id, KIND_POWERCONTROLLER_TOKEN, ttl, desc=desc)
    return JsonResponse(
        {
            "message": "Sign in successful",
            "token": token,
            "user": {"email": account.email, "name": account.name},
        }
    )


def _expires(value: Any) -> float:
    if value is None or value == "":
        return TOKEN_TTL_S
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # a form field
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("expires must be a whole number of seconds", field="expires")
    if not 0 < value <= TOKEN_TTL_MAX_S:
        raise InvalidInput("expires must be between 1 s and ten years", field="expires")
    return float(value)


@mapped
async def list_tokens(request: Request) -> Response:
    call = await authenticated(request)
    now = call.rt.clock.now()
    tokens = [
        {
            "id": c.id,
            "expires": wire.when(c.expires_at) if c.expires_at else None,
            "desc": c.desc,
        }
        for c in call.rt.auth.list(call.cred.account_id, KIND_POWERCONTROLLER_TOKEN)
        if c.valid_at(now)
    ]
    return JsonResponse({"tokens": tokens})


@mapped
async def delete_token(request: Request) -> Response:
    call = await authenticated(request)
    token_id = request.path_params["token_id"]
    mine = call.rt.auth.list(call.cred.account_id, KIND_POWERCONTROLLER_TOKEN)
    if not any(c.id == token_id and c.revoked_at is None for c in mine):
        raise CredentialNotFound("token not found")  # other kinds and accounts alike
    await call.rt.auth.revoke(call.cred.account_id, token_id)
    return message(200, "Token revoked")


# --- devices ------------------------------------------------------------------------


def _device(call: Call, request: Request) -> Device:
    return index(call.rt).lookup(call.rt, call.cred.account_id, request.path_params["device_id"])


def _controller(call: Call, request: Request) -> Device:
    """A power controller of the account; other devices cannot take these requests."""
    device = _device(call, request)
    if catalog_model(device.model).family is not Family.LOAD_CONTROLLER:
        raise InvalidInput("this device is not a power controller", field="device")
    return device


@mapped
async def add_device(request: Request) -> Response:
    call = await authenticated(request)
    rt = call.rt
    await admit(rt, call.cred.account_id)
    sn, country = text_field(call.body, "sn").strip(), text_field(call.body, "country").upper()
    # a serial registered to anyone (the caller included) gets a malformed serial's answer:
    # it never tells whose the controller is
    if not SERIAL.match(sn) or rt.engine.serial_taken(sn):
        raise InvalidInput(SERIAL_REFUSED, field="sn")
    if country not in COUNTRIES:
        raise InvalidInput("Invalid country code", field="country")
    try:
        device = await _register(rt, call, sn, country)
    except Conflict as err:  # a registration that raced this one
        raise InvalidInput(SERIAL_REFUSED, field="sn") from err
    return JsonResponse({"device": wire.device_body(device, rt.engine.shadow(device.id))})


async def _register(rt: Runtime, call: Call, sn: str, country: str) -> Device:
    return await rt.add_device(
        Device(
            id=0,
            account_id=call.cred.account_id,
            serial=sn,
            model=MODEL,
            name=f"Power Controller {sn}",
            created_at=rt.clock.now(),
            attrs={"country": country, "flowmeter": "none"},
            simulated=rt.settings.simulate_new_devices,
        ),
        connect_after_s=ACTIVATION_S,
    )


@mapped
async def list_devices(request: Request) -> Response:
    call = await authenticated(request)
    engine = call.rt.engine
    devices = [
        {"device": wire.device_body(d, engine.shadow(d.id))}
        for d in engine.devices(call.cred.account_id)
    ]
    return JsonResponse({"devices": devices})


@mapped
async def get_device(request: Request) -> Response:
    call = await authenticated(request)
    device = _device(call, request)
    shadow = call.rt.engine.shadow(device.id)
    return JsonResponse({"device": wire.device_body(device, shadow, detail=True)})


# --- commands, configuration, status refresh -----------------------------------------


# a form value is a number only as JSON writes one (int() and float() take more)
FORM_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _coerce(value: Any) -> Any:
    """Form values are strings: read numbers and booleans back (JSON bodies are left alone).

    Indexed brackets are a list, as the vendor's parser (qs) reads them:
    `schedule[0][name]=on&schedule[1][name]=off` is a list of two entries, in index order.
    """
    if isinstance(value, dict):
        if value and all(k.isascii() and k.isdigit() and len(k) <= 4 for k in value):
            return [_coerce(value[k]) for k in sorted(value, key=int)]
        return {k: _coerce(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if value in ("true", "false"):
        return value == "true"
    if FORM_NUMBER.fullmatch(value) is None:  # not "6_00", " 600", "nan", other scripts' digits
        return value
    return float(value) if any(c in value for c in ".eE") else int(value)


def _async(request: Request) -> bool:
    raw = request.query_params.get("async", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInput("async must be true or false", field="async")
    return raw in ("true", "1")


async def _run(
    call: Call, request: Request, device: Device, op: str, params: dict[str, Any], persist: bool
) -> Response:
    """Send to the controller: 202 at once with ?async=true, else its answer (or 503)."""
    if _async(request):
        pending(call.rt).submit(call.cred.account_id, device.id, op, params, persist)
        return Response(status_code=202)
    rec = await call.rt.engine.command(
        call.cred.account_id, device.id, FirmwareCommand(OPS[op], params)
    )
    return _answer(call, device, op, rec)


def _answer(call: Call, device: Device, op: str, rec: CommandRecord) -> Response:
    if rec.unreachable():
        raise DeviceOffline(rec.error or "device unreachable")
    result = rec.result or {}
    codes = [int(c) for c in result.get("codes", [])]
    data = result.get("data") or {}
    update = data.get("update") if isinstance(data, dict) else None
    body = wire.answer(op, codes, update or {}, rec.updated_at)
    if op == "status":
        shadow = call.rt.engine.shadow(device.id)
        body["status"] = {**wire.status_summary(shadow), "type": "update", "reason": "api"}
    ok = all(c > 0 for c in codes)
    return JsonResponse(body, status_code=200 if ok else 400)


def _persist(body: dict[str, Any], inner: Any) -> bool:
    for holder in (inner, body):
        if isinstance(holder, dict) and "persist" in holder:
            if not isinstance(holder["persist"], bool):
                raise InvalidInput("persist must be true or false", field="persist")
            return bool(holder["persist"])
    return True


@mapped
async def command(request: Request) -> Response:
    call = await authenticated(request)
    device = _controller(call, request)
    body = _coerce(call.body) if call.form else call.body
    cmd = body.get("command")
    if not isinstance(cmd, dict) or not isinstance(cmd.get("name"), str):
        raise InvalidInput("command.name is required", field="command")
    params = {k: v for k, v in cmd.items() if k != "persist"}
    return await _run(call, request, device, "command", params, _persist(body, cmd))


@mapped
async def configure(request: Request) -> Response:
    call = await authenticated(request)
    device = _controller(call, request)
    body = _coerce(call.body) if call.form else call.body
    info = body.get("info")
    if "schedule" in body:  # the schedule may come beside `info` as well as inside it
        info = {**(info if isinstance(info, dict) else {}), "schedule": body["schedule"]}
    if not isinstance(info, dict):
        raise InvalidInput("info is required", field="info")
    params = {k: v for k, v in info.items() if k != "persist"}
    _precheck(call, device, params)
    return await _run(call, request, device, "config", params, _persist(body, info))


def _precheck(call: Call, device: Device, params: dict[str, Any]) -> None:
    """Values no controller would take are refused here (400) without reaching it."""
    config = call.rt.engine.shadow(device.id).extra.get("config")
    if not isinstance(config, dict):
        return  # never connected: the controller will judge
    nominal = catalog_model(device.model).nominal_frequency_hz
    with contextlib.suppress(Refused):  # the controller answers these with negative codes
        plan_config(config, params, nominal, call.rt.clock.now())


@mapped
async def refresh(request: Request) -> Response:
    call = await authenticated(request)
    device = _controller(call, request)
    return await _run(call, request, device, "status", {}, _persist(call.body, None))


# --- statuses -------------------------------------------------------------------------


@mapped
async def statuses(request: Request) -> Response:
    """Statuses in a date range: the whole range for one device, pages only when asked.

    The document knows no paging: a client written from it must get every status of the
    range, or an error, never a silent cut. One device's 10 days come whole; an
    account-wide range that holds more than one page is refused (413), naming the
    `device` filter. `limit` or `cursor` asks for a page, with `next` when more remain.
    """
    call = await authenticated(request)
    rt, q = call.rt, request.query_params
    now = rt.clock.now()
    account = call.cred.account_id
    one = index(rt).lookup(rt, account, q["device"]) if "device" in q else None
    start, end = _range(q, now)
    paged = "limit" in q or "cursor" in q
    limit = _limit(q.get("limit"))
    wanted = None if one is None else [one.id]
    if paged:
        page = await rt.engine.history(account, wanted, start, end, q.get("cursor"), limit)
        records, more = list(page.records), page.next_cursor
    elif one is not None:
        records, more = await _whole(rt, account, wanted, start, end), None
    else:
        page = await rt.engine.history(account, None, start, end, None, PAGE_MAX)
        if page.next_cursor:
            raise TooLarge(
                f"More than {PAGE_MAX} statuses in this date range for the account: give "
                "device=<id> for one device, a shorter date range, or limit to page"
            )
        records, more = list(page.records), None
    devices = [one] if one is not None else rt.engine.devices(account)
    ids = {d.id: device_id(d) for d in devices}
    kept = [r for r in records if r.kind.value in wire.STATUS_TYPES]
    body: dict[str, Any] = {
        "statuses": [wire.status_body(r, ids[r.device_id]) for r in kept if r.device_id in ids]
    }
    if more:
        body["next"] = _next_link(rt.settings.base_url, request, more)
    return JsonResponse(body)


async def _whole(
    rt: Runtime, account: int, wanted: list[int] | None, start: float, end: float
) -> list[StatusRecord]:
    """Every status of one device in the range (10 days: a few thousand), page by page."""
    records: list[StatusRecord] = []
    cursor: str | None = None
    while True:
        page = await rt.engine.history(account, wanted, start, end, cursor, PAGE_MAX)
        records.extend(page.records)
        cursor = page.next_cursor
        if not cursor:
            return records
        if len(records) >= ONE_DEVICE_MAX:
            raise TooLarge(
                f"More than {ONE_DEVICE_MAX} statuses in this date range for the device: "
                "give a shorter date range, or limit to page"
            )


def _next_link(base_url: str, request: Request, cursor: str) -> str:
    """The next page's URL on the server's public base URL (never the client's Host),
    without the caller's access token (a link is logged and shared; the token is not)."""
    params = [(k, v) for k, v in request.query_params.multi_items()
              if k not in ("cursor", "access_token", "token")]  # fmt: skip
    return f"{base_url}{request.url.path}?{urlencode([*params, ('cursor', cursor)])}"


def _range(q: Any, now: float) -> tuple[float, float]:
    """`date` (from then to now) or `date[start]`/`date[end]`; yesterday to now by default.

    "Now" includes what happened at this very instant (the end bound is exclusive).
    """
    now = math.nextafter(now, math.inf)
    if "date" in q and ("date[start]" in q or "date[end]" in q):
        raise InvalidInput("give date, or date[start] and date[end], not both", field="date")
    if "date" in q:
        start, end = wire.parse_when(q["date"], "date"), now
    else:
        end = wire.parse_when(q["date[end]"], "date[end]") if "date[end]" in q else now
        start = end - DAY
        if "date[start]" in q:
            start = wire.parse_when(q["date[start]"], "date[start]")
    if start > end:
        raise InvalidInput("the start date is after the end date", field="date[start]")
    if end - start > MAX_RANGE_S:
        raise InvalidInput("The date range of one request is limited to 10 days", field="date")
    return start, end


def _limit(raw: str | None) -> int:
    if raw is None:
        return PAGE
    limit = plain_int(raw)
    if limit is None or not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be 1-{PAGE_MAX}", field="limit")
    return limit


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/signin", signin, methods=["POST"]),
        Route("/v1/tokens", list_tokens, methods=["GET"]),
        Route("/v1/tokens/{token_id}", delete_token, methods=["DELETE"]),
        Route("/v1/devices", list_devices, methods=["GET"]),
        Route("/v1/devices", add_device, methods=["POST"]),
        Route("/v1/devices/{device_id}", get_device, methods=["GET"]),
        Route("/v1/devices/{device_id}", configure, methods=["PUT"]),
        Route("/v1/devices/{device_id}/status", refresh, methods=["POST"]),
        Route("/v1/devices/{device_id}/command", command, methods=["POST"]),
        Route("/v1/statuses", statuses, methods=["GET"]),
    ]
