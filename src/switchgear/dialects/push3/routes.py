"""The EKM Push3 Device Settings API: sendCommand, and the response streams.

`POST /sendCommand` hands a command to the target meter's gateway and answers at once;
the gateway's answer arrives later on the response channel: `GET /sub/<channel>[.b<N>]`
(a chunked stream of JSON objects) or the `/ws/<channel>` websocket.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from switchgear.auth.scopes import KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from switchgear.core.accounts import Credential
from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import CommandState, Device, Family, FirmwareCommand, Json
from switchgear.devices import ekm_rules as rules
from switchgear.dialects.http import JsonResponse, bearer, json_object
from switchgear.dialects.push3.channels import BACKLOG, Channel, ChannelNotFound, Hub, hub
from switchgear.dialects.push3.errors import mapped, to_response
from switchgear.dialects.push3.macs import mac, same
from switchgear.dialects.push3.outbox import outbox
from switchgear.errors import (
    AuthError,
    DeviceNotFound,
    InvalidInput,
    NotAuthenticated,
    SwitchgearError,
)
from switchgear.runtime import Runtime
from switchgear.storedtext import storable
from switchgear.streams import Lease, LeasedStream, StreamEnded, gate

ADDRESS = re.compile(r"^[0-9A-Za-z]{1,12}$")
CHANNEL = re.compile(r"^(?P<id>[A-Za-z0-9_-]{1,128})(?:\.b(?P<n>\d{1,4}))?$")
CLIENT_MAX = 64
WS_ENDED = 4401  # close code: the key the socket was opened with was revoked or expired


def _rt(request: Request | WebSocket) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _key(rt: Runtime, request: Request, body: dict[str, Any]) -> Credential:
    """The account or gateway key: `?key=`, the body's `key`, or a Bearer header."""
    key = request.query_params.get("key") or body.get("key") or bearer(request)
    if not isinstance(key, str) or not key:
        raise NotAuthenticated("missing key")
    return rt.auth.authenticate(key, (KIND_PUSH3_KEY, KIND_PUSH3_GATEWAY_KEY))


async def _authenticated(rt: Runtime, request: Request) -> tuple[Credential, dict[str, Any]]:
    """The key's credential, then the body: nothing is said about the body before the key
    is good. A body that is not a JSON object carries no key (the document's body key is
    in "the POST body json"): without one in the query or a header it is the 401 of a
    missing key, the same answer a well-formed keyless body gets."""
    try:
        body: dict[str, Any] | None = await json_object(request)
    except InvalidInput:
        body = None
    cred = _key(rt, request, body or {})
    if body is None:
        body = await json_object(request)  # the key is good: now say what is wrong (400)
    return cred, body


def _text(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    return value


def _target(rt: Runtime, cred: Credential, body: dict[str, Any], gateway: str | None) -> Device:
    """The device the command is for: a meter (padded address) or a gateway of this key."""
    target = _text(body, "target")
    raw = _text(body, "target_id")
    assert raw is not None
    if target == "meter":
        if not ADDRESS.match(raw):
            raise InvalidInput(
                "target_id must be a meter address of 12 characters", field="target_id"
            )
        address, family = raw.zfill(12), Family.METER
    elif target == "gateway":
        address, family = mac(raw), Family.GATEWAY
    else:
        raise InvalidInput('target must be "meter" or "gateway"', field="target")
    limit = cred.attrs.get("gateway") if cred.kind == KIND_PUSH3_GATEWAY_KEY else None
    for d in rt.engine.devices(cred.account_id, family):
        gw = d.attrs.get("gateway") if family is Family.METER else d.serial
        named = same(d.serial, address) if family is Family.GATEWAY else d.serial == address
        if not named or gw is None:  # a meter not on a Push3 gateway is unknown here
            continue
        if (limit is None or same(gw, limit)) and (gateway is None or same(gw, gateway)):
            return d
    # another account's meter or gateway is exactly as unknown as one that does not exist
    raise DeviceNotFound(f"unknown {target} {address}")


def _gateway_of(rt: Runtime, account_id: int, device: Device) -> Device:
    if catalog_model(device.model).family is Family.GATEWAY:
        return device
    serial = device.attrs.get("gateway")
    for d in rt.engine.devices(account_id, Family.GATEWAY):
        if same(d.serial, serial):
            return d
    raise InvalidInput(f"meter {device.serial} has no gateway", field="target_id")


def _host(rt: Runtime) -> str:
    """The configured public base URL without its scheme (never the client's `Host`):
    `<scheme>://<host>/sub/<channel>` is then the stream, as the document builds it."""
    base = urlsplit(rt.settings.base_url)
    return base.netloc + base.path.rstrip("/")


@mapped
async def send_command(request: Request) -> Response:
    rt = _rt(request)
    cred, body = await _authenticated(rt, request)
    command = _text(body, "command")
    if command not in rules.COMMANDS:
        raise InvalidInput(f"unknown command {command!r}", field="command")
    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be a JSON object", field="params")
    client = _text(body, "client", required=False) or ""
    if len(client) > CLIENT_MAX:
        raise InvalidInput(f"client must be at most {CLIENT_MAX} characters", field="client")
    storable(client, "client")  # the channel registry keeps it
    gateway = request.query_params.get("gateway") or _text(body, "gateway", required=False)
    target = _target(rt, cred, body, gateway)
    if body["target"] == "gateway":  # the document lists no gateway command: it would fail
        raise InvalidInput(f"the gateway takes no command {command}: target a meter",
                           field="target")  # fmt: skip
    rules.check(command, params)  # what the meter would refuse is refused now, with a 400
    channels = hub(rt)
    wanted = _text(body, "response_channel_id", required=False)
    channel = (
        channels.named(cred.account_id, wanted)
        if wanted
        else channels.channel_for(cred.account_id, client)
    )
    await channels.tell_new()  # readable on every worker before its id is answered
    gw = _gateway_of(rt, cred.account_id, target)
    msg_id = uuid.uuid4().hex
    forward = FirmwareCommand(
        "push3.command",
        {"msg_id": msg_id, "command": command, "target": body["target"],
         "target_id": target.serial, "params": params, "channel": channel.id, "client": client},
    )  # fmt: skip
    rec = await rt.engine.command(cred.account_id, gw.id, forward)
    if rec.unreachable():  # off the network: the command waits on its stream for the gateway
        await outbox(rt).put(cred.account_id, gw.id, gw.serial, dict(forward.params))
    elif rec.state is not CommandState.DONE:  # the gateway refused it
        refused: dict[str, Json] = {
            "msg_id": msg_id, "timestamp": rt.clock.now(), "success": False,
            "error": f"gateway {gw.serial} did not take the command: {rec.error}", "data": None,
        }  # fmt: skip
        channels.deliver(channel.id, refused)
        await channels.tell_answer(channel.id, refused)
    return JsonResponse(
        {
            "msg_id": msg_id,
            "response_channel_id": channel.id,
            "response_channel_host": _host(rt),
        }
    )


def _open(rt: Runtime, raw: str, key: str | None) -> tuple[Hub, Channel, int | None]:
    """The channel named by a path segment (with its `.b<N>` replay count, None without).

    Reading needs no key (the unguessable id is the capability, as in the document); a
    key given must belong to the channel's account.
    """
    channels = hub(rt)
    account = None
    if key:  # checked first: a bad key learns nothing of the id, not even its form
        try:
            account = rt.auth.authenticate(key, (KIND_PUSH3_KEY, KIND_PUSH3_GATEWAY_KEY)).account_id
        except AuthError:
            raise ChannelNotFound("channel not found") from None  # a missing channel's 404
    m = CHANNEL.match(raw)
    if m is None:
        raise InvalidInput("malformed channel id", field="channel")
    ch = channels.get(m["id"], account)
    return channels, ch, None if m["n"] is None else min(int(m["n"]), BACKLOG)


def _line(message: dict[str, Json]) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def _lease(rt: Runtime, ch: Channel, key: str | None) -> Lease:
    """The stream's admission: under its key's credential, or (read without a key) under
    the channel id, the capability; it ends when that credential is revoked or expires."""
    cred = None
    if key:
        cred = rt.auth.authenticate(key, (KIND_PUSH3_KEY, KIND_PUSH3_GATEWAY_KEY))
    return gate(rt).acquire(cred, key=f"push3:{ch.id}")


@mapped
async def subscribe(request: Request) -> Response:
    rt = _rt(request)
    key = request.query_params.get("key")
    channels, ch, replay = _open(rt, request.path_params["channel"], key)
    lease = _lease(rt, ch, key)  # 429 past the cap
    q = channels.listen(ch)  # listening before the replay: nothing falls in between
    backlog = channels.replay(ch, replay)

    async def stream() -> AsyncIterator[bytes]:
        try:
            for message in backlog:
                yield _line(message)
            getter: asyncio.Future[dict[str, Json]] | None = None
            try:
                while True:
                    getter = getter or asyncio.ensure_future(q.get())
                    try:
                        message = await lease.wait(getter, within=rt.settings.push3_keepalive_s)
                    except TimeoutError:
                        yield b"\r\n"  # a keep-alive on an idle stream
                        continue
                    except StreamEnded:
                        return  # the key was revoked or expired: the stream ends
                    getter = None
                    yield _line(message)
            finally:
                if getter is not None:
                    getter.cancel()
        finally:
            channels.unlisten(ch, q)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return LeasedStream(lease, stream(), media_type="application/json", headers=headers)


async def websocket(ws: WebSocket) -> None:
    rt = _rt(ws)
    key = ws.query_params.get("key")
    try:
        channels, ch, replay = _open(rt, ws.path_params["channel"], key)
        lease = _lease(rt, ch, key)  # 429 past the cap
    except SwitchgearError as err:  # the same status and body as `/sub` gives
        await _refuse(ws, to_response(err))
        return
    with lease:  # given back however the socket ends
        await ws.accept()
        q = channels.listen(ch)
        backlog = channels.replay(ch, replay)
        receiver = asyncio.ensure_future(_until_closed(ws))
        try:
            for message in backlog:
                await ws.send_text(json.dumps(message))
            while True:
                getter = asyncio.ensure_future(q.get())
                stop = asyncio.ensure_future(lease.ended.wait())
                waits = {getter, receiver, stop}
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if getter not in done:
                    getter.cancel()
                    if receiver not in done:  # the key was revoked or expired
                        await ws.close(code=WS_ENDED, reason=lease.reason)
                    break
                await ws.send_text(json.dumps(getter.result()))
        finally:
            receiver.cancel()
            channels.unlisten(ch, q)


async def _refuse(ws: WebSocket, response: Response) -> None:
    """Refuse the handshake with an HTTP answer, where the server can send one."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(response)
    else:  # a server without the denial extension: a close code in the 4xxx range
        await ws.close(code=4000 + response.status_code, reason=bytes(response.body).decode())


async def _until_closed(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


def routes() -> list[BaseRoute]:
    return [
        Route("/sendCommand", send_command, methods=["POST"]),
        Route("/sub/{channel}", subscribe, methods=["GET"]),
        WebSocketRoute("/ws/{channel}", websocket),
    ]
