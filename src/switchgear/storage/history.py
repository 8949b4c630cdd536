"""Status history in SQL: a page of the recent and archived statuses, by cursor."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchgear import jsontext
from switchgear.core.model import HistoryPage, StatusKind, StatusRecord
from switchgear.storage import cursor as cursors
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import SqlBase

_KINDS = {kind.value: kind for kind in StatusKind}
# a read of devices over more time than this goes window by window (_windowed)
HISTORY_WINDOW_S = 10 * 86_400.0
# history's columns in the order it unpacks them; `data` follows as stored text
_HISTORY_COLUMNS = ("seq", "id", "ts", "device_id", "kind", "reason", "channel", "account_id")


class HistoryReads(SqlBase):
    """Reads of the statuses and statuses_archive tables."""

    async def history(
        self,
        device_ids: Sequence[int] | None,
        start: float,
        end: float,
        cursor: str | None = None,
        limit: int = 500,
        account_id: int | None = None,
    ) -> HistoryPage:
        params: dict[str, Any] = {"start": start, "end": end, "n": limit + 1}
        if device_ids is None:
            params["account"] = account_id
        else:
            params["devices"] = list(device_ids)
        if cursor:
            params["after_ts"], params["after_seq"] = cursors.decode(cursor)
        q = _history_query(device_ids is None, bool(cursor))
        async with self.engine.connect() as conn:
            if device_ids is None or end - start <= HISTORY_WINDOW_S:
                rows = (await conn.execute(q, params)).all()
            else:
                rows = await _windowed(conn, q, params, limit)
        page = rows[:limit]
        nxt = cursors.encode(page[-1][2], page[-1][0]) if len(rows) > limit and page else None
        data = _json_values([r[-1] for r in page])
        records = tuple(
            StatusRecord(id_, device_id, ts, _KINDS[kind], reason, d, channel, owner_id)
            for (_, id_, ts, device_id, kind, reason, channel, owner_id, _), d in zip(
                page, data, strict=True
            )
        )
        return HistoryPage(records, nxt)


@functools.cache
def _history_query(by_account: bool, after: bool) -> sa.Select[Any]:
    """History's statement for one shape of request, built once (building the union of
    the two tables' pages cost more than running it); the values are bound parameters."""

    start: sa.BindParameter[float] = sa.bindparam("start")
    end: sa.BindParameter[float] = sa.bindparam("end")

    def part(table: sa.Table) -> sa.Select[Any]:
        """The page from one table: its own index ranges (for devices in the archive, one
        per segment whose span meets the range)."""
        s = table.c
        owner = (
            s.account_id == sa.bindparam("account")
            if by_account
            else s.device_id.in_(sa.bindparam("devices", expanding=True))
        )
        q = sa.select(*(s[name] for name in _HISTORY_COLUMNS), sa.type_coerce(s.data, sa.Text))
        q = q.where(owner, s.ts >= start, s.ts < end)
        if table is t.statuses_archive and not by_account:
            g = t.status_segments
            q = q.where(
                s.segment.in_(sa.select(g.c.id).where(g.c.max_ts >= start, g.c.min_ts < end))
            )
        if after:
            ts = sa.bindparam("after_ts", type_=sa.Float)
            seq = sa.bindparam("after_seq", type_=sa.BigInteger)
            q = q.where(sa.or_(s.ts > ts, sa.and_(s.ts == ts, s.seq > seq)))
        return sa.select(q.order_by(s.ts, s.seq).limit(sa.bindparam("n")).subquery())

    both = sa.union_all(part(t.statuses_archive), part(t.statuses)).subquery()
    return sa.select(both).order_by(both.c.ts, both.c.seq).limit(sa.bindparam("n"))


@functools.cache
def _extent_query() -> sa.Select[Any]:
    """The first and last time any status of the devices may have within [start, end):
    the archived segments meeting the range (any device's) and the devices' recent rows."""
    g, s = t.status_segments, t.statuses
    start: sa.BindParameter[float] = sa.bindparam("start")
    end: sa.BindParameter[float] = sa.bindparam("end")
    archived = sa.select(sa.func.min(g.c.min_ts).label("first"), sa.func.max(g.c.max_ts))
    recent = sa.select(sa.func.min(s.c.ts), sa.func.max(s.c.ts)).where(
        s.c.device_id.in_(sa.bindparam("devices", expanding=True)), s.c.ts >= start, s.c.ts < end
    )
    both = sa.union_all(archived.where(g.c.max_ts >= start, g.c.min_ts < end), recent).subquery()
    first, last = both.c
    return sa.select(sa.func.min(first), sa.func.max(last))


async def _windowed(
    conn: AsyncConnection, q: sa.Select[Any], params: dict[str, Any], limit: int
) -> list[Any]:
    """A long range read in time windows, oldest first, until the page is full: the
    archive answers a device's range one segment at a time, so a year in one statement
    would read (and sort) the whole year for a page of it. A window that leaves the page
    short doubles the next; the walk covers only the time the data spans."""
    lo, end = params["start"], params["end"]
    if "after_ts" in params:
        lo = max(lo, params["after_ts"])
    bounds = {"start": lo, "end": end, "devices": params["devices"]}
    first, last = (await conn.execute(_extent_query(), bounds)).one()
    if first is None:
        return []
    lo, end = max(lo, first), min(end, math.nextafter(last, math.inf))
    rows: list[Any] = []
    width = HISTORY_WINDOW_S
    while lo < end and len(rows) <= limit:
        hi = min(end, lo + width)
        window = {**params, "start": lo, "end": hi, "n": limit + 1 - len(rows)}
        rows += (await conn.execute(q, window)).all()
        lo, width = hi, width * 2
    return rows


def _json_values(values: list[Any]) -> list[Any]:
    """Stored JSON as values: SQLite hands over text, decoded here in one call (a call per
    row cost more than the rows); asyncpg's codec has already decoded it."""
    if values and isinstance(values[0], str):
        return list(jsontext.loads(f"[{','.join(values)}]"))
    return values
