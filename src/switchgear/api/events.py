"""Live device events as server-sent events (`GET /api/v1/events`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.api.openapi import answers
from switchgear.api.schemas import device_out, iso
from switchgear.core.model import DeviceState, Json
from switchgear.errors import DeviceNotFound
from switchgear.runtime import Runtime
from switchgear.streams import Lease, LeasedStream, StreamEnded, gate

router = APIRouter(tags=["events"])

KEEPALIVE_S = 15.0


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **answers(404, 429)},
)
async def events(
    rt: RuntimeDep, cred: CredentialDep, device: int | None = None
) -> StreamingResponse:
    """Relay changes, triggers and updates of the account's devices as they happen.

    The stream ends (with an `end` event naming the reason) when the token it was opened
    with is revoked or expires.
    """
    if device is not None:
        rt.engine.device(cred.account_id, device)  # 404 if not the account's
        prefix = f"device/{cred.account_id}/{device}"
    else:
        prefix = f"device/{cred.account_id}/"
    lease = gate(rt).acquire(cred)  # 429 past the credential's cap
    exact = prefix if device is not None else None
    return LeasedStream(
        lease,
        _stream(rt, cred.account_id, rt.bus.subscribe(prefix), exact, lease),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def render(rt: Runtime, account_id: int, msg: dict[str, Json]) -> str | None:
    """An event in the REST API's formats: ISO times, `state` as `GET /devices/{id}`
    shows the device (None once the device is gone)."""
    try:
        device = rt.engine.device(account_id, int(msg["device_id"]))
    except DeviceNotFound:
        return None
    state = DeviceState.from_json(msg["state"])
    event = {
        "id": msg["id"],
        "device_id": device.id,
        "ts": iso(float(msg["ts"])),
        "kind": msg["kind"],
        "reason": msg["reason"],
        "channel": msg["channel"],
        "data": msg["data"],
        "state": device_out(device, state).model_dump(mode="json"),
    }
    return json.dumps(event)


async def _stream(
    rt: Runtime,
    account_id: int,
    messages: AsyncIterator[tuple[str, Json]],
    exact: str | None,
    lease: Lease,
) -> AsyncIterator[str]:
    it = aiter(messages)
    nxt: asyncio.Future[Any] | None = None
    try:
        yield ": connected\n\n"
        while True:
            if nxt is None:  # one pending read, kept across keep-alives
                nxt = asyncio.ensure_future(anext(it))
            try:
                topic, msg = await lease.wait(nxt, KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            except StreamEnded as end:
                yield f"event: end\ndata: {json.dumps({'reason': str(end)})}\n\n"
                return
            nxt = None
            if exact is not None and topic != exact:
                continue
            data = render(rt, account_id, msg)
            if data is not None:
                yield f"event: {msg['kind']}\nid: {msg['id'] or ''}\ndata: {data}\n\n"
    finally:
        if nxt is not None and not nxt.done():
            nxt.cancel()  # ends the subscription (the generator is running: no aclose)
        else:
            await it.aclose()  # type: ignore[attr-defined]
