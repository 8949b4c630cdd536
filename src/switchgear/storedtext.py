"""Text the store keeps: no NUL character (U+0000), which PostgreSQL's text cannot hold.

Every face refuses a NUL in client text before it reaches the store, each in its own
error format (an `InvalidInput` naming the field); asyncpg would otherwise raise at the
write, a 500, and such a name would break logs and CSV exports on the other stores.
"""

from __future__ import annotations

from switchgear.errors import InvalidInput

NUL = "\x00"
REFUSED = "may not hold a NUL character (U+0000)"


def storable(value: str, field: str) -> str:
    """`value`, or InvalidInput naming `field` if it holds a NUL."""
    if NUL in value:
        raise InvalidInput(f"{field} {REFUSED}", field=field)
    return value
