"""The native API reads JSON bodies by the same rules as every vendor face.

FastAPI parses a body with `json`, which takes `NaN` and `Infinity` and gives up on deep
nesting with a generic message. This gate reads a JSON body once with `jsontext` (the
faces' parser) before FastAPI does and answers a refusal as a 400 problem document; a
body it accepts is replayed to FastAPI unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchgear import jsontext
from switchgear.api.problems import problem
from switchgear.bodylimit import BodyTooLarge

_BODYLESS = {"GET", "HEAD", "OPTIONS", "DELETE"}


def _is_json(scope: Scope) -> bool:
    """What FastAPI would parse as JSON: no content type, or application/json or +json."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = str(value.decode("latin-1")).partition(";")[0].strip().lower()
            return media == "application/json" or (
                media.startswith("application/") and media.endswith("+json")
            )
    return True


class JsonBodies:
    """ASGI middleware: a JSON body that `jsontext` refuses gets 400 before any route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except BodyTooLarge as err:  # answered here: outside is FastAPI's 500 layer
            await problem(413, "Payload Too Large", err.message)(scope, receive, send)
            return
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if body and messages[-1]["type"] == "http.request":
            try:
                jsontext.loads(body)
            except ValueError as err:
                detail = f"request body is not valid JSON: {getattr(err, 'msg', err)}"
                await problem(400, "Bad Request", detail, field="body")(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
