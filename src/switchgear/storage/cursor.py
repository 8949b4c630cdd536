"""History cursors: an opaque token for the last (ts, seq) a page returned."""

from __future__ import annotations

import base64
import binascii
import math

from switchgear.errors import InvalidInput

SEQ_LIMIT = 2**63  # a stored sequence number is a signed 64-bit integer


def encode(ts: float, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{ts!r}:{seq}".encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts_text, seq_text = raw.split(":")
        ts, seq = float(ts_text), int(seq_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("malformed cursor", field="cursor") from None
    if not math.isfinite(ts) or not 0 <= seq < SEQ_LIMIT:
        raise InvalidInput("malformed cursor", field="cursor")
    return ts, seq
