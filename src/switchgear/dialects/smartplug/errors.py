"""The smart-plug API's errors: API Problem documents, mapped once from the error tree."""

from __future__ import annotations

from switchgear import errors
from switchgear.dialects.http import JsonResponse, mapped_by

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


def problem(status: int, title: str, detail: str) -> JsonResponse:
    body = {"type": PROBLEM_TYPE, "title": title, "status": status, "detail": detail}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None  # RFC 6750 §3
    return JsonResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def to_response(err: errors.SwitchgearError) -> JsonResponse:
    found = errors.lookup(STATUS, err)
    if found is None:
        return problem(500, "Internal Server Error", "unexpected error")
    return problem(found[0], found[1], err.message)


mapped = mapped_by(to_response)
