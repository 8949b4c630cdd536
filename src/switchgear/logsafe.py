"""Secrets never reach the logs: a filter that redacts them from third-party log lines.

Our own log calls name credentials by id only; libraries are another matter (httpx logs
every request URL at INFO, and a smart-MAIC meter's PIN travels in its query string).
"""

from __future__ import annotations

import logging
import re

# names of query parameters, headers and fields that carry secrets on some face, a prefix
# included (access_token, client_secret, meter_password, Ocp-Apim-Subscription-Key)
_NAME = r"(?:[\w-]*[_-])?(?:devpass|key|token|password|secret|authorization)"
_SECRET_QUERY = re.compile(rf"(?i)\b({_NAME})=[^&\s\"']+")
# the same as a JSON or Python mapping writes it: "password": "...", 'key': '...'
_SECRET_FIELD = re.compile(rf"""(?i)\b({_NAME}["']\s*:\s*b?["'])[^"']*""")
_BEARER = re.compile(r"(?i)\b(bearer:?\s+)[A-Za-z0-9._~+/=-]+")
# a password in a URL's user info: mqtt://user:password@host, postgresql://user:pw@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@")
# a Push3 response channel's id in its stream's path: reading `/sub/<id>` or `/ws/<id>`
# needs nothing else (the id is the capability), so it is a secret like a key
_CHANNEL = re.compile(r"(/(?:sub|ws)/)[A-Za-z0-9_-]+")
_CHANNEL_PATHS = ("/sub/", "/ws/")


def redact(text: str) -> str:
    text = _CHANNEL.sub(r"\1[redacted]", _USERINFO.sub(r"\1:[redacted]@", text))
    text = _SECRET_FIELD.sub(r"\1[redacted]", _SECRET_QUERY.sub(r"\1=[redacted]", text))
    return _BEARER.sub(r"\1[redacted]", text)


def path(p: str) -> str:
    """A request path as a log line may show it: a response channel's id redacted (a cheap
    check first: this runs for every request's access line)."""
    return _CHANNEL.sub(r"\1[redacted]", p) if p.startswith(_CHANNEL_PATHS) else p


class Redact(logging.Filter):
    """Rewrites a record's message and traceback with secrets replaced by `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            # formatters print exc_text when it is set: an exception's message may quote
            # what the failing call was given (a URL with its PIN, a request's headers)
            record.exc_text = redact(_TRACEBACK.formatException(record.exc_info))
        return True


_TRACEBACK = logging.Formatter()


def install() -> None:
    """Attach the filter to the loggers of libraries that log URLs, and to the one that logs
    unexpected faults (idempotent)."""
    loggers = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "aiomqtt",
               "switchgear.observe")  # fmt: skip
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Redact) for f in logger.filters):
            logger.addFilter(Redact())
