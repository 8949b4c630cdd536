"""Per-request instrumentation: a request id (echoed as X-Request-ID), one access log line,
the request histogram and the one ERROR record of an unexpected fault, in one ASGI layer so
the hot paths pay for it once."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from random import getrandbits

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchgear import edges, logsafe, metrics
from switchgear.logs import REQUEST_ID

access = logging.getLogger("switchgear.access")
log = logging.getLogger(__name__)

HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")  # a proxy's id is kept when it is this tame


class Observe:
    """Wrap the app: set the request id, time the request, count it by face and route."""

    def __init__(self, app: ASGIApp, faces: Mapping[int, str]) -> None:
        self.app = app
        self.faces = faces  # id(a dialect route) -> its face's name; other routes are native
        self._keys: dict[tuple[str, str, str, int], tuple[str, str, str, str]] = {}
        self._templates: dict[int, str] = {}  # id(route) -> its whole path template

    def _template(self, route: object, path: str, scope: Scope) -> str:
        """The route's template from the root: a route of an included router knows only its
        own part, so the prefix is what the request's path has before that part."""
        if scope["path"] == path:
            self._templates[id(route)] = path
            return path
        fmt = getattr(route, "path_format", path)
        try:
            suffix = fmt.format(**scope.get("path_params", {}))
        except (KeyError, IndexError, ValueError):
            return path
        if not suffix or not scope["path"].endswith(suffix):
            return path  # (an escaped parameter, say): this once, the route's own part
        template: str = scope["path"][: -len(suffix)] + path
        self._templates[id(route)] = template
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope["headers"]:
            if name == HEADER:
                rid = value if _SAFE_ID.fullmatch(value) else b""
                break
        rid = rid or b"%016x" % getrandbits(64)  # a correlation id, not a secret
        token = REQUEST_ID.set(rid.decode())
        status = 0  # no answer started yet
        done = False  # the answer's last byte sent
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid)]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status and not done:
                raise  # an answer under way: the server drops the connection and logs it once
            self._fault(scope, exc)
            if not status:  # else answered already (the native API's problem document)
                await edges.answer(scope, 500, "Internal Server Error")(
                    scope, receive, send_with_id
                )
        finally:
            elapsed = time.perf_counter() - started
            status = status or 500  # what the server answers an app that answered nothing
            self._observe(scope, status, elapsed)
            if access.isEnabledFor(logging.INFO):
                path = logsafe.path(scope["path"])  # a Push3 channel's id is a secret
                access.info("%s %s %d %.1fms", scope["method"], path, status, elapsed * 1000)
            REQUEST_ID.reset(token)

    @staticmethod
    def _fault(scope: Scope, exc: Exception) -> None:
        """The one record of a fault no handler expected, with its traceback and the request
        id; the exception goes no further, so the server does not log it a second time
        (Starlette's ServerErrorMiddleware re-raises it for that)."""
        method, path = scope["method"], logsafe.path(scope["path"])
        log.error("unexpected error on %s %s", method, path, exc_info=exc)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if route is None or not isinstance(path, str):
            face, path = edges.face_of(scope).name, "unmatched"
        else:
            face = self.faces.get(id(route), "native")
            path = self._templates.get(id(route)) or self._template(route, path, scope)
        key = (face, path, scope["method"], status)
        labels = self._keys.get(key)
        if labels is None:
            labels = self._keys[key] = (face, path, scope["method"], str(status))
        metrics.REQUESTS.observe(labels, elapsed)
