"""The multisocket API's errors in the API gateway's JSON shape, mapped once."""

from __future__ import annotations

from switchgear import errors
from switchgear.dialects.http import JsonResponse, mapped_by
from switchgear.dialects.multisocket.cors import allow_origin

# error class -> HTTP status; the first match along the class's MRO wins.
STATUS: dict[type[errors.SwitchgearError], int] = {
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.AuthError: 401,
    errors.InvalidInput: 400,
    errors.RateLimited: 403,  # the gateway answers an exhausted quota with 403
    errors.DeviceOffline: 503,
    errors.CommandTimedOut: 504,
    errors.DeviceError: 502,
}


class QuotaExceeded(errors.RateLimited):
    """Out of call volume quota."""


class MissingKey(errors.NotAuthenticated):
    """Access denied due to missing subscription key."""


class InvalidKey(errors.InvalidCredential):
    """Access denied due to invalid subscription key."""


def gateway(status: int, message: str) -> JsonResponse:
    body = {"statusCode": status, "message": message}
    return allow_origin(JsonResponse(body, status_code=status))


def to_response(err: errors.SwitchgearError) -> JsonResponse:
    return gateway(errors.lookup(STATUS, err) or 500, err.message)


mapped = mapped_by(to_response)
