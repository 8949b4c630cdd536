"""Live device events as server-sent events (`GET /api/v1/events`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.core.model import Json

router = APIRouter(tags=["events"])

KEEPALIVE_S = 15.0


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    rt: RuntimeDep, cred: CredentialDep, device: int | None = None
) -> StreamingResponse:
    """Relay changes, triggers and updates of the account's devices as they happen."""
    if device is not None:
        rt.engine.device(cred.account_id, device)  # 404 if not the account's
        prefix = f"device/{cred.account_id}/{device}"
    else:
        prefix = f"device/{cred.account_id}/"
    return StreamingResponse(
        _stream(rt.bus.subscribe(prefix), exact=prefix if device is not None else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    messages: AsyncIterator[tuple[str, Json]], exact: str | None
) -> AsyncIterator[str]:
    yield ": connected\n\n"
    it = aiter(messages)
    try:
        while True:
            try:
                topic, msg = await asyncio.wait_for(anext(it), timeout=KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if exact is not None and topic != exact:
                continue
            yield f"event: {msg['kind']}\nid: {msg['id'] or ''}\ndata: {json.dumps(msg)}\n\n"
    finally:
        await it.aclose()  # type: ignore[attr-defined]
