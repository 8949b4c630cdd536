"""Group-commit writes as driver statements compiled once: one executemany (or COPY) per table.

SQLAlchemy compiles each statement for the open database's dialect when the store opens;
a batch then hands the driver plain tuples, JSON already encoded, so the per-row cost is
building one tuple instead of SQLAlchemy's per-row parameter processing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchgear.core.model import CommandRecord, Json, StatusRecord
from switchgear.core.ports import Batch
from switchgear.storage import tables as t

_dumps = json.JSONEncoder(separators=(",", ":")).encode


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
class Writes:
    """The four group-commit statements for one dialect."""

    statuses: Statement
    nvram: Statement
    commands: Statement
    meta: Statement

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect) -> Writes:
        return cls(
            statuses=compile_write(t.statuses, dialect, None),
            nvram=compile_write(t.nvram, dialect, "device_id"),
            commands=compile_write(t.commands, dialect, "id"),
            meta=compile_write(t.meta, dialect, "key"),
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
