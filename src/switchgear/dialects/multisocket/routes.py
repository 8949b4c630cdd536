"""The multisocket API: GetPlugStatus and SetPlugStatus on one URL, as plain Starlette routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from switchgear import jsontext
from switchgear.auth.scopes import KIND_MULTISOCKET_ID_TOKEN, SCOPE_PLUG_READ, SCOPE_PLUG_WRITE
from switchgear.core.accounts import Credential
from switchgear.core.engine import raise_for_state
from switchgear.core.model import Action, Family, Switch
from switchgear.dialects.http import JsonResponse, body_bytes
from switchgear.dialects.multisocket import wire
from switchgear.dialects.multisocket.cors import allow_origin, preflight
from switchgear.dialects.multisocket.errors import mapped
from switchgear.dialects.multisocket.gate import Quota, subscription
from switchgear.errors import (
    DeviceOffline,
    InvalidCredential,
    InvalidInput,
    NotAuthenticated,
    NotFound,
)
from switchgear.runtime import Runtime

# API Management's default name for the subscription key in the query string
QUERY_KEY = "subscription-key"
PATH = (
    "/multioutlet/plug/energy/addressLocation/plants/{plantId}"
    "/parameter/{parameterKey}/value/{parameterValue}"
)


class PlantNotFound(NotFound):
    """The plant identified by 'plantId' does not exist."""


class NoPlug(NotFound):
    """No Plug were found."""


def _quota(rt: Runtime) -> Quota:
    quota = rt.extensions.get("multisocket.quota")
    if not isinstance(quota, Quota):
        quota = rt.extensions["multisocket.quota"] = Quota(
            rt.clock, rt.settings.multisocket_daily_quota, rt.counters
        )
    return quota


async def _caller(request: Request, scope: str) -> tuple[Runtime, Credential]:
    """Gateway first (key, quota), then the id token (with or without `Bearer `), then scope.

    The key comes as API Management takes it: the header, or else the `subscription-key`
    query parameter.
    """
    rt: Runtime = request.app.state.runtime
    given = request.headers.get("ocp-apim-subscription-key")
    key = subscription(rt, given or request.query_params.get(QUERY_KEY))
    await _quota(rt).spend(key.account_id)  # per user: all of an account's keys share one quota
    token = request.headers.get("authorization", "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise NotAuthenticated("The user identified by 'authorization' does not exist.")
    try:
        cred = rt.auth.authenticate_jwt(token, KIND_MULTISOCKET_ID_TOKEN)
    except InvalidCredential:
        raise InvalidCredential("The user identified by 'authorization' does not exist.") from None
    rt.auth.require_scope(cred, scope)
    return rt, cred


def _target(request: Request, rt: Runtime, account_id: int) -> list[wire.Socket]:
    plant = wire.check_plant_id(request.path_params["plantId"])
    key = wire.check_key(request.path_params["parameterKey"])
    value = request.path_params["parameterValue"]
    strips = [
        d for d in rt.engine.devices(account_id, Family.STRIP) if d.attrs.get("plant_id") == plant
    ]
    if not strips:  # missing, or another account's: the same answer
        raise PlantNotFound("The plant identified by 'plantId' does not exist.")
    every = [s for d in strips for s in wire.sockets(d, rt.engine.shadow(d.id))]
    matched = wire.match(every, key, value)
    if not matched:
        raise NoPlug("No Plug were found.")
    return matched


def _render(rt: Runtime, matched: list[wire.Socket]) -> Response:
    states = {s.device.id: rt.engine.shadow(s.device.id) for s in matched}
    return allow_origin(JsonResponse(wire.plugs_body(matched, states)))


def _reachable(rt: Runtime, matched: list[wire.Socket]) -> None:
    """Every matched socket's strip is online, or the answer is 503 (no stale states)."""
    if any(not rt.engine.shadow(s.device.id).online for s in matched):
        raise DeviceOffline("Device unreachable")


@mapped
async def get_status(request: Request) -> Response:
    rt, cred = await _caller(request, SCOPE_PLUG_READ)
    matched = _target(request, rt, cred.account_id)
    _reachable(rt, matched)
    return _render(rt, matched)


@mapped
async def set_status(request: Request) -> Response:
    rt, cred = await _caller(request, SCOPE_PLUG_WRITE)
    body = await body_bytes(request)
    try:
        data = jsontext.loads(body) if body else None
    except ValueError:
        raise InvalidInput("request body is not valid JSON", field="body") from None
    matched = _target(request, rt, cred.account_id)
    wanted = wire.parse_status(data, len(matched))
    _reachable(rt, matched)  # all or nothing: refuse before switching anything
    for socket, on in zip(matched, wanted, strict=True):
        action = Action.ON if on else Action.OFF
        record = await rt.engine.command(
            cred.account_id, socket.device.id, Switch(action, socket.channel)
        )
        raise_for_state(record)
    return _render(rt, matched)


def routes() -> list[BaseRoute]:
    return [
        Route(PATH, set_status, methods=["POST"]),
        Route(PATH, get_status, methods=["GET"]),
        Route(PATH, preflight, methods=["OPTIONS"]),
    ]
