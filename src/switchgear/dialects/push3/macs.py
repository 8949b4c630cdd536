"""Gateway MACs as the Push3 face compares and writes them: twelve upper-case hex digits."""

from __future__ import annotations

import re

# `4016a0b1c2d3`, `40:16:A0:B1:C2:D3`, `40-16-a0-b1-c2-d3`: one MAC, however written
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?:([:-]?)[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}")


def mac(text: str) -> str:
    """The MAC in the form the face answers with (upper case, no separators); a serial
    that is no MAC is compared without regard to case as well."""
    if _MAC.fullmatch(text):
        return re.sub(r"[:-]", "", text).upper()
    return text.upper()


def same(a: str | None, b: str | None) -> bool:
    """Do two gateway names (MACs or serials) name the same gateway?"""
    return a is not None and b is not None and mac(a) == mac(b)
