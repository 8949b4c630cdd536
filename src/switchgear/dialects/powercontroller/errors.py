"""The power controller API's errors: `{"message": ...}` with the HTTP status, mapped once."""

from __future__ import annotations

from switchgear import errors
from switchgear.dialects.http import JsonResponse, mapped_by

# error class -> (HTTP status, message or None to use the error's own); first MRO match wins.
STATUS: dict[type[errors.SwitchgearError], tuple[int, str | None]] = {
    errors.DeviceNotFound: (404, "Device not found"),
    errors.CredentialNotFound: (404, "Token not found"),
    errors.NotFound: (404, "Not found"),
    errors.BadPassword: (401, "Invalid email or password"),
    errors.AuthError: (401, "Unauthorized"),  # never says why a token was refused
    errors.TooLarge: (413, None),
    errors.InvalidInput: (400, None),
    errors.Conflict: (400, None),
    errors.RateLimited: (429, None),
    errors.DeviceError: (503, "Device unreachable"),  # offline or no answer in time
}


def message(status: int, text: str) -> JsonResponse:
    return JsonResponse({"message": text}, status_code=status)


def to_response(err: errors.SwitchgearError) -> JsonResponse:
    status, text = errors.lookup(STATUS, err) or (500, "Internal error")
    response = message(status, text or err.message)
    if isinstance(err, errors.RateLimited) and err.retry_after:
        response.headers["Retry-After"] = str(max(1, round(err.retry_after)))
    return response


mapped = mapped_by(to_response)
