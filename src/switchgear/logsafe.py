"""Secrets never reach the logs: a filter that redacts them from third-party log lines.

Our own log calls name credentials by id only; libraries are another matter (httpx logs
every request URL at INFO, and a smart-MAIC meter's PIN travels in its query string).
"""

from __future__ import annotations

import logging
import re

# query parameters and headers that carry secrets on some face
_SECRET_QUERY = re.compile(
    r"(?i)\b(devpass|key|access_token|token|password|client_secret|refresh_token)=[^&\s\"']+"
)
_BEARER = re.compile(r"(?i)\b(bearer:?\s+)[A-Za-z0-9._~+/=-]+")
# a password in a URL's user info: mqtt://user:password@host, postgresql://user:pw@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@")


def redact(text: str) -> str:
    text = _USERINFO.sub(r"\1:[redacted]@", text)
    return _BEARER.sub(r"\1[redacted]", _SECRET_QUERY.sub(r"\1=[redacted]", text))


class Redact(logging.Filter):
    """Rewrites a record's message with secrets replaced by `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install() -> None:
    """Attach the filter to the loggers of libraries that log URLs (idempotent)."""
    for name in ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "aiomqtt"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, Redact) for f in logger.filters):
            logger.addFilter(Redact())
