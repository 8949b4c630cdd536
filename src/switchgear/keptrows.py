"""Rows kept in the meta table: moving an older version's single row to one per item."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from switchgear.core.model import Json
from switchgear.runtime import Runtime

Rows = Callable[[Json], Iterable[tuple[str, Json]]]


async def split_legacy(rt: Runtime, key: str, rows: Rows) -> Json | None:
    """Move what a version before kept in the one row `key` (an object or a list) to a row
    per item (`rows` names them); of workers starting together one takes the old row, and
    each new row is written only if its key is free, so nothing runs twice or is lost.
    Returns what the old row held (None if there was none), whichever worker moves it:
    one that did not take it may read the new rows before they are all written."""
    legacy = await rt.store.meta(key)
    if legacy and await rt.store.take_meta(key):
        for row_key, value in rows(legacy):
            await rt.store.claim(row_key, value)
    return legacy
