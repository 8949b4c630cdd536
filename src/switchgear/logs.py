"""Server logging: text or JSON lines on stderr, each carrying the request id it served."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
FORMATS = ("text", "json")
# Chatty below WARNING and of no use to an operator unless debugging: each migration step,
# uvicorn's own start-up narration (switchgear prints where it listens), httpx's requests.
QUIET = ("alembic", "uvicorn.error", "httpx")
# Never below INFO, even at debug: aiosqlite's DEBUG lines are every statement with its
# values, which are the stored secrets (meter PINs, meter passwords, password hashes).
SILENT_AT_DEBUG = ("aiosqlite",)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served (`-` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id (and exc_info)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # (as logsafe.Redact left it, when it did)
            line["exc_info"] = record.exc_text
        return json.dumps(line)


JsonFormatter.converter = time.gmtime


def configure_logging(level: str, fmt: str = "text") -> None:
    """Route switchgear's and uvicorn's loggers to one stderr handler in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers would print twice
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    quiet = root.level > logging.DEBUG
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    for name in SILENT_AT_DEBUG:
        logging.getLogger(name).setLevel(logging.INFO)
