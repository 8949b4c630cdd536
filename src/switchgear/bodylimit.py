"""A transport-level cap on request bodies, before any face buffers them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchgear import edges

MAX_BODY = 1024 * 1024  # the cap for every path; each face's own may be smaller


class BodyLimit:
    """Answers 413, in the shape of the path's face, when a body exceeds that face's limit
    (`max_bytes` at most), declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # every face takes at least FLOOR bytes: which face a path is, is asked only of a
        # body larger than that (most requests have none)
        floor = min(self.max_bytes, edges.FLOOR)
        declared, chunked = None, False
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
            elif key == b"transfer-encoding":
                chunked = True
        if declared is not None and declared.isdigit():
            if int(declared) > floor and int(declared) > (limit := self._limit(scope)):
                await self._refuse(scope, receive, send, limit)
                return
            if not chunked:  # the server reads no more than the declared length
                await self.app(scope, receive, send)
                return
        seen = 0
        started = False
        limit = 0

        async def limited() -> Message:
            nonlocal seen, limit
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > floor and seen > (limit := limit or self._limit(scope)):
                    raise BodyTooLarge(limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    def _limit(self, scope: Scope) -> int:
        return min(self.max_bytes, edges.face_of(scope).max_body)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await edges.answer(scope, 413, BodyTooLarge(limit).message)(scope, receive, send)


class BodyTooLarge(Exception):
    """The streamed body passed the limit: raised by `receive`, answered 413 here unless
    an app in between answers it first (one that reads the body before its own error
    handling must, or its server-error layer answers 500)."""

    def __init__(self, limit: int) -> None:
        self.message = f"request body larger than {limit} bytes"
        super().__init__(self.message)
