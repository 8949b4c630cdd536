"""Group-commit writes as driver statements compiled once: one executemany (or COPY) per table.

SQLAlchemy compiles each statement for the open database's dialect when the store opens;
a batch then hands the driver plain tuples, JSON already encoded, so the per-row cost is
building one tuple instead of SQLAlchemy's per-row parameter processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchgear import jsontext
from switchgear.core.model import CommandRecord, Json, StatusRecord
from switchgear.core.ports import Batch
from switchgear.storage import tables as t

_dumps = jsontext.dumps_text

# recent statuses that call for a move to the archive: one segment (at 10,000 devices ten
# rows per device; a 10-day read of one device then visits ~100 segments)
ARCHIVE_ROWS = 100_000


def encode(value: Any) -> str | None:
    """A JSON column's value as the text the driver stores (None stays SQL NULL)."""
    return None if value is None else _dumps(value)


@dataclass(frozen=True)
class Statement:
    """Driver SQL whose positional parameters follow the table's column order."""

    sql: str
    columns: tuple[str, ...]
    table: str = ""  # the table it writes
    key: str | None = None  # the upsert's conflict column (None: a plain insert)


def compile_write(table: sa.Table, dialect: sa.Dialect, key: str | None) -> Statement:
    """INSERT of every column but an autoincrement key; with `key`, an upsert on it."""
    cols = tuple(c.name for c in table.columns if not (c.primary_key and c.autoincrement is True))
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values({name: sa.bindparam(name) for name in cols}).inline()
    if key is not None:
        stmt = stmt.on_conflict_do_update(
            index_elements=[key],
            set_={name: stmt.excluded[name] for name in cols if name != key},
        )
    compiled = stmt.compile(dialect=dialect)
    if tuple(compiled.positiontup or ()) != cols:  # the row builders below rely on it
        raise RuntimeError(f"{table.name}: unexpected parameter order {compiled.positiontup}")
    return Statement(str(compiled), cols, table.name, key)


@dataclass(frozen=True)
class Archive:
    """The move of recent statuses to the archive as one segment sorted by (device, time).

    A move starts once `rows` statuses are recent and takes up to twice that many, oldest
    first: `bound` answers the newest `seq` among them; `segment` the next segment's
    number, `span` the moved rows' first and last time; `copy` (segment, bound) appends
    them to the archive and `record` (segment, min_ts, max_ts, rows) notes the segment;
    `delete` (bound) removes them from `statuses`, or `clear` empties it when that is
    every recent row (the steady state): SQLite's DELETE without a WHERE and PostgreSQL's
    TRUNCATE free the pages without visiting the rows, and leave no dead rows behind for
    a vacuum (PostgreSQL's DELETE did, and the recent table's index scans read them).
    Run them in one transaction; on PostgreSQL a repeatable-read one that starts with
    `lock`, so no other writer adds a row between `newest` and `clear` (and that falls
    back to `delete` when the TRUNCATE cannot have its lock: commits._truncate_or_delete).
    """

    rows: int
    bound: str
    newest: str
    segment: str
    span: str
    copy: str
    record: str
    delete: str
    clear: str
    lock: str | None

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect, rows: int) -> Archive:
        s, a, g = t.statuses, t.statuses_archive, t.status_segments
        hi: sa.BindParameter[int] = sa.bindparam("hi")
        oldest = sa.select(s.c.seq).order_by(s.c.seq).limit(2 * rows).subquery()
        names = [c.name for c in s.columns]
        moved = sa.select(sa.bindparam("segment", type_=sa.BigInteger), *s.c).where(s.c.seq <= hi)
        queries = {
            "bound": sa.select(sa.func.max(oldest.c.seq)),
            "newest": sa.select(sa.func.max(s.c.seq)),
            "segment": sa.select(sa.func.coalesce(sa.func.max(g.c.id), 0) + 1),
            "span": sa.select(sa.func.min(s.c.ts), sa.func.max(s.c.ts)).where(s.c.seq <= hi),
            "copy": a.insert().from_select(
                ["segment", *names], moved.order_by(s.c.device_id, s.c.ts, s.c.seq)
            ),
            "record": g.insert().values(
                {c: sa.bindparam(c) for c in ("id", "min_ts", "max_ts", "rows")}
            ),
            "delete": s.delete().where(s.c.seq <= hi),
            "clear": s.delete(),
        }
        # each statement's positional parameters; constants are inlined (SQLite would want
        # an OFFSET parameter beside a bound LIMIT)
        params = {"copy": ("segment", "hi"), "record": ("id", "min_ts", "max_ts", "rows"),
                  "span": ("hi",), "delete": ("hi",)}  # fmt: skip
        sql = {}
        for name, q in queries.items():
            wanted = params.get(name, ())
            compiled = q.compile(dialect=dialect, compile_kwargs={"literal_binds": not wanted})
            if tuple(compiled.positiontup or ()) != wanted:
                raise RuntimeError(f"archive {name}: parameters {compiled.positiontup}")
            sql[name] = str(compiled)
        if dialect.name == "postgresql":  # other writers wait; readers go on
            sql["clear"] = f"TRUNCATE {s.name}"
            return cls(rows, **sql, lock=f"LOCK TABLE {s.name} IN EXCLUSIVE MODE")
        return cls(rows, **sql, lock=None)


@dataclass(frozen=True)
class Writes:
    """The four group-commit statements for one dialect, and the archive move."""

    statuses: Statement
    nvram: Statement
    commands: Statement
    meta: Statement
    archive: Archive

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect, archive_rows: int = ARCHIVE_ROWS) -> Writes:
        return cls(
            statuses=compile_write(t.statuses, dialect, None),
            nvram=compile_write(t.nvram, dialect, "device_id"),
            commands=compile_write(t.commands, dialect, "id"),
            meta=compile_write(t.meta, dialect, "key"),
            archive=Archive.for_dialect(dialect, archive_rows),
        )


Row = tuple[Any, ...]


def status_row(r: StatusRecord) -> Row:
    """id, device_id, ts, kind, reason, channel, data, account_id."""
    return (r.id, r.device_id, r.ts, r.kind.value, r.reason, r.channel, _dumps(r.data),
            r.account_id)  # fmt: skip


def command_row(rec: CommandRecord) -> Row:
    """id, device_id, account_id, name, params, state, created_at, updated_at, result, error."""
    return (rec.id, rec.device_id, rec.account_id, rec.name, _dumps(rec.params),
            rec.state.value, rec.created_at, rec.updated_at, encode(rec.result),
            rec.error)  # fmt: skip


def keyed_rows(items: dict[Any, Json]) -> list[Row]:
    """nvram (device_id, blob) and meta (key, value) rows."""
    return [(k, encode(v)) for k, v in items.items()]


def planned(w: Writes, batch: Batch) -> list[tuple[Statement, list[Row]]]:
    """The batch as (statement, rows) in commit order, leaving out empty tables. Meta goes
    last: every process's group commit writes the `clock` row, so its lock is held only
    from there to the commit, not over the batch's COPY and upserts (docs/performance.md,
    "FFR: the group commits' one row")."""
    plan: list[tuple[Statement, list[Row]]] = []
    if batch.nvram:
        plan.append((w.nvram, keyed_rows(batch.nvram)))
    if batch.commands:
        plan.append((w.commands, [command_row(r) for r in batch.commands.values()]))
    if batch.statuses:
        plan.append((w.statuses, [status_row(r) for r in batch.statuses]))
    if batch.meta:
        plan.append((w.meta, keyed_rows(batch.meta)))
    return plan
