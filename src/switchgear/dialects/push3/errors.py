"""The Push3 API's errors: `{"error": "..."}` with the HTTP status, mapped once."""

from __future__ import annotations

from switchgear import errors
from switchgear.dialects.http import JsonResponse, mapped_by

# error class -> HTTP status; the first match along the class's MRO wins.
STATUS: dict[type[errors.SwitchgearError], int] = {
    errors.NotFound: 404,
    errors.AuthError: 401,
    errors.InvalidInput: 400,
    errors.Conflict: 400,
    errors.RateLimited: 429,
    errors.DeviceError: 503,
}


def to_response(err: errors.SwitchgearError) -> JsonResponse:
    return JsonResponse({"error": err.message}, status_code=errors.lookup(STATUS, err) or 500)


mapped = mapped_by(to_response)
