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

# recent statuses that call for a move to the archive (at 10,000 devices: ten per device,
# so a move appends about ten rows to each device's range of the archive)
ARCHIVE_ROWS = 100_000


def encode(value: Any) -> str | None:
    """A JSON column's value as the text the driver stores (None stays SQL NULL)."""
    return None if value is None else _dumps(value)


@dataclass(frozen=True)
class Statement:
    """Driver SQL whose positional parameters follow the table's column order."""

    sql: str
    columns: tuple[str, ...]


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
    return Statement(str(compiled), cols)


@dataclass(frozen=True)
class Archive:
    """The move of recent statuses to the archive, in (device, time) order.

    A move starts once `rows` statuses are recent and takes up to twice that many, oldest
    first: `bound` answers the newest `seq` among them, `copy` and `delete` take it. When
    that is every recent row (the steady state) `clear` empties the table instead, which
    SQLite does without visiting the rows. Run them in one transaction (on PostgreSQL a
    repeatable-read one, so `delete` removes exactly what `copy` saw).
    """

    rows: int
    bound: str
    newest: str
    copy: str
    delete: str
    clear: str

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect, rows: int) -> Archive:
        s, a = t.statuses, t.statuses_archive
        oldest = sa.select(s.c.seq).order_by(s.c.seq).limit(2 * rows).subquery()
        names = [c.name for c in a.columns]
        moved = sa.select(*(s.c[n] for n in names)).where(s.c.seq <= sa.bindparam("hi"))
        queries = (
            sa.select(sa.func.max(oldest.c.seq)),
            sa.select(sa.func.max(s.c.seq)),
            a.insert().from_select(names, moved.order_by(s.c.device_id, s.c.ts, s.c.seq)),
            s.delete().where(s.c.seq <= sa.bindparam("hi")),
            s.delete(),
        )
        literal = {"literal_binds": True}  # the LIMIT: SQLite would want an OFFSET parameter too
        bound, newest, copy, delete, clear = (
            str(q.compile(dialect=dialect, compile_kwargs=literal if q is queries[0] else {}))
            for q in queries
        )
        return cls(rows, bound, newest, copy, delete, clear)


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
    """The batch as (statement, rows) in commit order, leaving out empty tables."""
    plan: list[tuple[Statement, list[Row]]] = []
    if batch.meta:
        plan.append((w.meta, keyed_rows(batch.meta)))
    if batch.nvram:
        plan.append((w.nvram, keyed_rows(batch.nvram)))
    if batch.commands:
        plan.append((w.commands, [command_row(r) for r in batch.commands.values()]))
    if batch.statuses:
        plan.append((w.statuses, [status_row(r) for r in batch.statuses]))
    return plan
