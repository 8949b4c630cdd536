"""The smart-plug API's errors: API Problem documents, mapped once from the error tree."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from switchgear import errors

log = logging.getLogger(__name__)

PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"

# error class -> (HTTP status, title); the first match along the class's MRO wins.
STATUS: dict[type[errors.SwitchgearError], tuple[int, str]] = {
    errors.NotFound: (404, "Not Found"),
    errors.AuthError: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
    errors.InvalidInput: (400, "Bad Request"),
    errors.Conflict: (409, "Conflict"),
    errors.RateLimited: (429, "Too Many Requests"),
    errors.DeviceOffline: (503, "Service Unavailable"),
    errors.CommandTimedOut: (504, "Gateway Timeout"),
    errors.DeviceError: (502, "Bad Gateway"),
}


def problem(status: int, title: str, detail: str) -> JSONResponse:
    body = {"type": PROBLEM_TYPE, "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def to_response(err: errors.SwitchgearError) -> JSONResponse:
    for cls in type(err).__mro__:
        if cls in STATUS:
            status, title = STATUS[cls]
            return problem(status, title, err.message)
    return problem(500, "Internal Server Error", "unexpected error")


Handler = Callable[[Request], Awaitable[Response]]


def mapped(handler: Handler) -> Handler:
    """Render any domain error the handler raises as this API's problem document."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.SwitchgearError as err:
            return to_response(err)

    return wrapper
