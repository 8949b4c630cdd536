"""The smart-plug provider API: /provider/fetch, /provider/send, login, controllers.

Plain Starlette routes (no per-request framework machinery): authenticate from the
in-memory credential cache, read the shadow, call the engine, render the vendor's shape.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from switchgear.auth import tokens
from switchgear.auth.clientaddr import client_address
from switchgear.auth.scopes import (
    KIND_SMARTPLUG_ACCESS,
    KIND_SMARTPLUG_CLIENT,
    KIND_SMARTPLUG_REFRESH,
)
from switchgear.core.accounts import Credential
from switchgear.core.catalog import model as catalog_model
from switchgear.core.engine import raise_for_state
from switchgear.core.model import Device, Family
from switchgear.dialects.http import (
    JsonResponse,
    bearer,
    json_object,
    json_or_form,
    plain_int,
    raw_header,
    text_field,
)
from switchgear.dialects.render import shadow_cache
from switchgear.dialects.smartplug import wire
from switchgear.dialects.smartplug.errors import mapped
from switchgear.errors import (
    AuthError,
    BadPassword,
    DeviceNotFound,
    InvalidCredential,
    InvalidInput,
    RateLimited,
)
from switchgear.runtime import Runtime

ACCESS_TTL_S = 86_400.0
REFRESH_TTL_S = 30 * 86_400.0
PAGE_SIZE = 25
# The vendor's mobile app is a public client; community libraries log in as it too.
PUBLIC_CLIENTS = {"mclimate": "mclimate_core"}


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _caller(request: Request) -> tuple[Runtime, Credential]:
    rt = _rt(request)
    return rt, rt.auth.authenticate(bearer(request), KIND_SMARTPLUG_ACCESS)


def _plug(rt: Runtime, account_id: int, serial: str) -> Device:
    """The account's smart plug with this serial; anything else is 'not found'."""
    device = rt.engine.device_by_serial(account_id, serial)
    if catalog_model(device.model).family is not Family.PLUG:
        raise DeviceNotFound("device not found")
    return device


@mapped
async def fetch(request: Request) -> Response:
    rt, cred = _caller(request)
    serial = text_field(await json_object(request), "serial_number")
    device = _plug(rt, cred.account_id, serial)
    cache = shadow_cache(rt, "smartplug.fetch", wire.fetch_json)
    body = cache.get(device.id, rt.engine.shadow(device.id))
    return Response(body, media_type="application/json")


@mapped
async def send(request: Request) -> Response:
    rt, cred = _caller(request)
    data = await json_object(request)
    serial = text_field(data, "serial_number")
    command = wire.parse_send(data)
    device = _plug(rt, cred.account_id, serial)
    record = await rt.engine.command(cred.account_id, device.id, command)
    raise_for_state(record)
    return JsonResponse(wire.send_body(device))


@mapped
async def controllers(request: Request) -> Response:
    rt, cred = _caller(request)
    raw = request.query_params.get("page", "1")
    page = plain_int(raw)
    if page is None or page < 1:
        raise InvalidInput("page must be a positive integer", field="page")
    plugs = rt.engine.devices(cred.account_id, Family.PLUG)
    last = max(1, -(-len(plugs) // PAGE_SIZE))
    chunk = plugs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    body = {
        "_embedded": {"controller": [wire.controller(d, rt.engine.shadow(d.id)) for d in chunk]},
        "_links": {
            "first": {"href": "/v1/controllers?page=1"},
            "last": {"href": f"/v1/controllers?page={last}"},
            "self": {"href": f"/v1/controllers?page={page}"},
        },
        "total": len(plugs),
    }
    return JsonResponse(body)


@mapped
async def controller(request: Request) -> Response:
    rt, cred = _caller(request)
    serial = request.path_params["serial"]
    device = _plug(rt, cred.account_id, serial)
    return JsonResponse(
        {
            "controller": wire.controller(device, rt.engine.shadow(device.id)),
            "_links": wire.links(f"/v1/controllers/{serial}"),
        }
    )


def _basic(request: Request) -> dict[str, str]:
    """Client credentials given as HTTP Basic, as OAuth 2 libraries send them (RFC 6749
    §2.3.1: id and secret form-encoded, then joined by a colon); {} without them."""
    header = raw_header(request, b"authorization")
    if not header or header[:6].lower() != "basic ":
        return {}
    try:
        pair = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredential("malformed Basic credentials") from None
    client_id, sep, secret = pair.partition(":")
    if not sep:
        raise InvalidCredential("malformed Basic credentials")
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(secret)}


def _client(rt: Runtime, data: dict[str, Any], request: Request) -> tuple[str, Credential | None]:
    """The client id, and its credential unless it is the public client. The body's
    `client_id` and `client_secret` when it has them, else the HTTP Basic ones."""
    if "client_id" not in data:
        data = {**data, **_basic(request)}
    client_id = text_field(data, "client_id")
    secret = text_field(data, "client_secret")
    if PUBLIC_CLIENTS.get(client_id) == secret:
        return client_id, None
    return client_id, rt.auth.authenticate(tokens.compose(client_id, secret), KIND_SMARTPLUG_CLIENT)


def _grant_error(href: str, status: int, error: str, description: str) -> Response:
    return JsonResponse(wire.auth_error(href, error, description), status_code=status)


async def login(request: Request) -> Response:
    """OAuth-style password grant: client credentials plus the user's email and password."""
    href = "/v1/auth/login"
    rt = _rt(request)
    try:
        data = await json_or_form(request)
        client_id, client = _client(rt, data, request)
        username, password = text_field(data, "username"), text_field(data, "password")
        host = client_address(request, rt.settings.trusted_proxies)
        account = await rt.auth.login(username, password, client=host)
    except InvalidInput as err:
        return _grant_error(href, 400, "invalid_request", err.message)
    except BadPassword:
        return _grant_error(href, 400, "invalid_grant", "Invalid username and password combination")
    except RateLimited as err:
        refused = _grant_error(href, 429, "invalid_grant", err.message)
        refused.headers["Retry-After"] = str(max(1, round(err.retry_after)))
        return refused
    except AuthError:
        return _grant_error(href, 401, "invalid_client", "Invalid client credentials")
    if client is not None and client.account_id != account.id:
        return _grant_error(href, 401, "invalid_client", "Invalid client credentials")
    # minted with the client's credential: revoking the client ends them (not the public one)
    attrs = {"client_id": client_id}
    grant = await rt.auth.issue(
        account.id, KIND_SMARTPLUG_REFRESH, REFRESH_TTL_S, attrs=attrs, parent=client
    )
    _, access = await rt.auth.issue(
        account.id, KIND_SMARTPLUG_ACCESS, ACCESS_TTL_S, attrs=attrs, parent=grant[0]
    )
    return JsonResponse(wire.auth_body(access, ACCESS_TTL_S, grant[1]))


async def renew(request: Request) -> Response:
    """A new access token for a refresh token of the same client (the refresh token stays)."""
    href = "/v1/auth/renew"
    rt = _rt(request)
    try:
        data = await json_or_form(request)
        client_id, _ = _client(rt, data, request)
        token = text_field(data, "refresh_token")
    except InvalidInput as err:
        return _grant_error(href, 400, "invalid_request", err.message)
    except AuthError:
        return _grant_error(href, 401, "invalid_client", "Invalid client credentials")
    try:
        refresh = rt.auth.authenticate(token, KIND_SMARTPLUG_REFRESH)
        if refresh.attrs.get("client_id") != client_id:
            raise InvalidCredential("refresh token of another client")
    except AuthError:
        return _grant_error(href, 400, "invalid_grant", "Invalid refresh token")
    attrs = {"client_id": client_id}  # under the refresh token: revoked with it (RFC 7009)
    _, access = await rt.auth.issue(
        refresh.account_id, KIND_SMARTPLUG_ACCESS, ACCESS_TTL_S, attrs=attrs, parent=refresh
    )
    return JsonResponse(wire.auth_body(access, ACCESS_TTL_S, None))


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for prefix in ("", "/v1"):
        out.append(Route(f"{prefix}/provider/fetch", fetch, methods=["POST"]))
        out.append(Route(f"{prefix}/provider/send", send, methods=["POST"]))
    out += [
        Route("/v1/auth/login", login, methods=["POST"]),
        Route("/v1/auth/renew", renew, methods=["POST"]),
        Route("/v1/controllers", controllers, methods=["GET"]),
        Route("/v1/controllers/{serial}", controller, methods=["GET"]),
    ]
    return out
