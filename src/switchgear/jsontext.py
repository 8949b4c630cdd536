"""JSON text on the hot paths: orjson, compact and UTF-8, for the faces and the store.

`json` cost a send about 10 µs (a body parsed, a response and three stored columns
encoded); orjson does the same in about 1. What orjson refuses to parse (a UTF-8
byte-order mark, say) gets `json`'s verdict instead, under the same rules. Every face
reads bodies here, so what counts as JSON is decided once, at parse level: `NaN`,
`Infinity` and `-Infinity` are not JSON (RFC 8259), nor is a number that overflows a
double (`1e999`, or 400 nines), nor a string with an unpaired surrogate escape (it has
no UTF-8 form); a value nesting deeper than `MAX_DEPTH` is refused (no request of any
face nests past a handful, and orjson writes no deeper than 254 levels, so a deeper
value could be read but never stored). Each refusal is a `json.JSONDecodeError`, a
ValueError, so a face answers it as any body that is not JSON. An integer beyond 64 bits
parses as a float. NaN and infinities are written as null.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # like json: integer keys become strings
MAX_DEPTH = 64


def loads(data: bytes | str) -> Any:
    """A JSON document's value; ValueError (UnicodeDecodeError included) if it is not one."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = _fallback(data)
    if isinstance(value, list | dict) and _opens(data) > MAX_DEPTH and _too_deep(value):
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", _head(data), 0)
    return value


def _fallback(data: bytes | str) -> Any:
    """json's reading of what orjson refused, refusing what orjson refuses on purpose."""
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_finite, parse_int=_int)
    except RecursionError:
        too_deep = f"nested deeper than {MAX_DEPTH} levels"
        raise json.JSONDecodeError(too_deep, _head(data), 0) from None
    if _has_surrogate(value):
        raise json.JSONDecodeError("a string holds a lone surrogate", _head(data), 0)
    return value


def _constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError("number out of range", text, 0)
    return value


def _int(text: str) -> int | float:
    """Like orjson: beyond 64 bits an integer is a float, and one a double cannot hold
    is out of range."""
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    try:
        return float(value)
    except OverflowError:
        raise json.JSONDecodeError("number out of range", text[:20], 0) from None


def _has_surrogate(value: Any) -> bool:
    """Whether a string (key or value) holds an unpaired surrogate escape (`"\\ud800"`):
    text that has no UTF-8 form, so could never be stored or sent back."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _opens(data: bytes | str) -> int:
    """Opening brackets in the text: an upper bound of the depth, counted in C."""
    return data.count("[") + data.count("{") if isinstance(data, str) else (
        data.count(b"[") + data.count(b"{"))  # fmt: skip


def _too_deep(value: Any) -> bool:
    """Whether a parsed value nests past MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, list | dict))
    return False


def _head(data: bytes | str) -> str:
    return data[:40] if isinstance(data, str) else data[:40].decode("utf-8", "replace")


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return orjson.dumps(value, option=_OPTIONS)


def dumps_text(value: Any) -> str:
    """Compact JSON as text (the store's JSON columns)."""
    return orjson.dumps(value, option=_OPTIONS).decode()
