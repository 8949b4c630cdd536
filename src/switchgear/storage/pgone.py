"""A small group commit on PostgreSQL as one statement: one round trip, one transaction.

Each table's rows go as arrays, one a column, unnested into its INSERT (an upsert for the
keyed tables); the tables are data-modifying CTEs of one statement, which PostgreSQL runs
in the statement's own transaction: all or nothing, as BEGIN ... COMMIT around an
executemany or COPY a table was, in one round trip instead of five or six (a command's
commit: 0.57-0.71 -> 0.30-0.34 ms of our CPU, 0.43 -> 0.23 ms of PostgreSQL's;
`python -m bench.pgcommit`, figures in docs/performance.md).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from switchgear.storage import tables as t
from switchgear.storage.bulk import Row, Statement

# above this many statuses a batch goes by COPY in an explicit transaction (COPY is the
# cheaper of the two at thousands of rows); the keyed tables' upserts are one statement
# whatever their size (1,500 NVRAM rows: 9.5-10.5 ms of PostgreSQL's CPU, against
# 13-20.5 ms as an executemany)
ONE_STATEMENT_ROWS = 1000

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _insert(table: sa.Table, columns: tuple[str, ...], key: str | None, first: int) -> str:
    """INSERT INTO table (columns) SELECT FROM unnest($first.., one array a column)."""
    q = _PG.identifier_preparer.quote
    arrays, picks = [], []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        json = isinstance(kind, sa.JSON)  # sent as its text, cast where it is inserted
        arrays.append(f"${first + i}::{'text' if json else kind.compile(dialect=_PG)}[]")
        picks.append(f"u.c{i}::json" if json else f"u.c{i}")
    names = ", ".join(q(n) for n in columns)
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    sql = (f"INSERT INTO {q(table.name)} ({names}) SELECT {', '.join(picks)} "
           f"FROM unnest({', '.join(arrays)}) AS u({aliases})")  # fmt: skip
    if key is not None:
        sets = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in columns if n != key)
        sql += f" ON CONFLICT ({q(key)}) DO UPDATE SET {sets}"
    return sql


@cache
def statement(parts: tuple[Statement, ...]) -> str:
    """The one statement writing `parts` (each table's compiled write) in their order."""
    inserts, first = [], 1
    for stmt in parts:
        table = t.metadata.tables[stmt.table]
        inserts.append(_insert(table, stmt.columns, stmt.key, first))
        first += len(stmt.columns)
    *ctes, last = inserts
    if not ctes:
        return last
    return "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(ctes)) + " " + last


def fits(plan: list[tuple[Statement, list[Row]]]) -> bool:
    """Whether a batch goes as one statement: its statuses are few enough."""
    return all(len(rows) <= ONE_STATEMENT_ROWS for stmt, rows in plan if stmt.table == "statuses")


def arguments(plan: list[tuple[Statement, list[Row]]]) -> list[Any]:
    """The statement's parameters: every table's rows, transposed to one list a column."""
    args: list[Any] = []
    for _, rows in plan:
        args.extend(list(col) for col in zip(*rows, strict=True))
    return args
