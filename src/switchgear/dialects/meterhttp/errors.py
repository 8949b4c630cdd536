"""The smart-MAIC meter's errors: `{"error": "..."}` with the HTTP status, mapped once."""

from __future__ import annotations

from switchgear import errors
from switchgear.dialects.http import mapped_by
from switchgear.dialects.meterhttp.wire import MeterResponse, reply


def to_response(err: errors.SwitchgearError) -> MeterResponse:
    """The relay's answer: unavailable when the device fails it, else the bad input."""
    if isinstance(err, errors.DeviceError):
        return reply(503, {"error": "relay unavailable"})
    return reply(400, {"error": err.message})


mapped = mapped_by(to_response)
