"""Rows a face keeps in the meta table: moving an older version's single row to one per item."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from switchgear.core.model import Json
from switchgear.runtime import Runtime

Rows = Callable[[Json], Iterable[tuple[str, Json]]]


async def split_legacy(rt: Runtime, key: str, rows: Rows) -> None:
    """Move what a version before kept in the one row `key` to a row per item (`rows` names
    them); of workers starting together one takes the old row, and each new row is
    written only if its key is free, so nothing runs twice or is lost."""
    legacy = await rt.store.meta(key)
    if isinstance(legacy, dict) and legacy and await rt.store.take_meta(key):
        for row_key, value in rows(legacy):
            await rt.store.claim(row_key, value)
