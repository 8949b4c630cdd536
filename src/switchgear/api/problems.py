"""RFC 9457 problem responses: the native API's one mapping of the error tree."""

from __future__ import annotations

import re
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from switchgear import errors
from switchgear.logs import REQUEST_ID

PROBLEM = "application/problem+json"

# error class -> (HTTP status, title); the first match in the class's MRO wins.
STATUS: dict[type[errors.SwitchgearError], tuple[int, str]] = {
    errors.NotFound: (404, "Not Found"),
    errors.NotAuthenticated: (401, "Unauthorized"),
    errors.AuthError: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NothingMatched: (422, "Unprocessable Content"),
    errors.InvalidInput: (400, "Bad Request"),
    errors.Conflict: (409, "Conflict"),
    errors.RateLimited: (429, "Too Many Requests"),
    errors.DeviceOffline: (503, "Device Offline"),
    errors.CommandTimedOut: (504, "Device Timeout"),
    errors.CommandRejected: (422, "Command Rejected"),
    errors.DeviceError: (502, "Device Error"),
}


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(err: errors.SwitchgearError) -> tuple[int, str]:
    return errors.lookup(STATUS, err) or (500, "Internal Server Error")


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.SwitchgearError)
    status, title = status_of(exc)
    extra: dict[str, object] = {"field": exc.field}
    if isinstance(exc, errors.RateLimited) and exc.retry_after:
        extra["retry_after"] = round(exc.retry_after, 3)
    if isinstance(exc, errors.DeviceError):
        extra["command_id"] = exc.command_id
    if isinstance(exc, errors.NothingEnrolled):
        extra["refused"] = exc.refused
    response = problem(status, title, exc.message, **extra)
    if isinstance(exc, errors.RateLimited) and exc.retry_after:
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return response


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errs)
    return problem(400, "Bad Request", detail, errors=errs)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, _title(exc.status_code), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405:  # every method of the path, not only the first route's
        methods = _documented(request.app, request.url.path)
        if methods:
            response.headers["Allow"] = ", ".join(methods)
    return response


_OPERATIONS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives for a path (FastAPI's own 405 names only
    the first matching route's)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allow", None)
    if table is None:
        table = app.state.allow = [
            (re.compile(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template))),
             {m.upper() for m in operations if m in _OPERATIONS})
            for template, operations in app.openapi().get("paths", {}).items()
        ]  # fmt: skip
    methods: set[str] = set()
    for pattern, ops in table:
        if pattern.fullmatch(path):
            methods |= ops
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A fault no handler expected: a 500 problem document with the request id (Starlette's
    ServerErrorMiddleware answers with it, then re-raises; observe.py logs it, once)."""
    return problem(500, "Internal Server Error", UNEXPECTED, request_id=REQUEST_ID.get())


UNEXPECTED = "The server met an unexpected error; quote the request id to report it."


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    """Map the error tree, validation errors, plain HTTP errors and unexpected faults to
    problem documents."""
    app.add_exception_handler(errors.SwitchgearError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
