"""SqlStore: the Store port on SQLAlchemy 2 Core, for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from switchgear import jsontext
from switchgear.core.accounts import Credential
from switchgear.core.model import (
    Account,
    CommandRecord,
    CommandState,
    Device,
    HistoryPage,
    Json,
    StatusKind,
    StatusRecord,
)
from switchgear.core.ports import Batch
from switchgear.errors import Conflict
from switchgear.storage import bulk
from switchgear.storage import cursor as cursors
from switchgear.storage import tables as t
from switchgear.storage.private import private_sqlite
from switchgear.storage.sqlitewriter import SqliteWriter, pragmas
from switchgear.storage.sweep import sweep_meta
from switchgear.storage.url import async_url

MIGRATIONS = Path(__file__).parent / "migrations"
# a move sorts ~25 MB of rows: in memory, not in temporary files (PostgreSQL's default 4 MB)
MOVE_WORK_MEM = "SET LOCAL work_mem = '64MB'"
# how long a move's TRUNCATE waits for readers of the recent table (a pg_dump, a long
# read) before it deletes the moved rows instead: writers wait on the move meanwhile
TRUNCATE_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '1s'"

log = logging.getLogger(__name__)

_KINDS = {kind.value: kind for kind in StatusKind}
# a read of devices over more time than this goes window by window (_windowed)
HISTORY_WINDOW_S = 10 * 86_400.0
# history's columns in the order it unpacks them; `data` follows as stored text
_HISTORY_COLUMNS = ("seq", "id", "ts", "device_id", "kind", "reason", "channel", "account_id")


def _upgrade(conn: sa.Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


class SqlStore:
    """Durable storage; writes are serialised (SQLite has one writer) and batched by the journal."""

    def __init__(self, url: str, archive_rows: int = bulk.ARCHIVE_ROWS) -> None:
        self.url = async_url(url)
        self._engine: AsyncEngine | None = None
        self._write = asyncio.Lock()
        self._writes: bulk.Writes | None = None
        self._copy = False
        self._sqlite: SqliteWriter | None = None
        self._archive_rows = archive_rows
        self._recent = 0  # rows in `statuses`, not yet moved to the archive

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store is not open")
        return self._engine

    async def open(self) -> None:
        path = sa.engine.make_url(self.url).database
        if self.url.startswith("sqlite") and path and path != ":memory:":
            private_sqlite(path)  # before SQLite creates it (and its WAL/SHM) 0644
        engine = create_async_engine(  # JSON columns read and written by the hot-path codec
            self.url, json_serializer=jsontext.dumps_text, json_deserializer=jsontext.loads
        )
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", lambda conn, _: pragmas(conn))
        self._copy = engine.dialect.name == "postgresql"
        self._writes = bulk.Writes.for_dialect(engine.dialect, self._archive_rows)
        self._engine = engine
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
            self._recent = (
                await conn.execute(sa.select(sa.func.count()).select_from(t.statuses))
            ).scalar_one()
        path = engine.url.database
        if engine.dialect.name == "sqlite" and path and path != ":memory:":
            self._sqlite = SqliteWriter(path, self._writes)
            await self._sqlite.open()

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def writes(self) -> bulk.Writes:
        if self._writes is None:
            raise RuntimeError("store is not open")
        return self._writes

    async def _one_write(self, stmt: Any) -> Any:
        async with self._write, self.engine.begin() as conn:
            return await conn.execute(stmt)

    # --- accounts -----------------------------------------------------------

    async def add_account(
        self, email: str, name: str, password_hash: str, role: str = "tenant"
    ) -> Account:
        now = time.time()
        stmt = t.accounts.insert().values(
            email=email, name=name, password_hash=password_hash, created_at=now, role=role
        )
        try:
            res = await self._one_write(stmt)
        except IntegrityError:
            raise Conflict(f"an account with email {email!r} exists", field="email") from None
        return Account(int(res.inserted_primary_key[0]), email, name, now, role)

    async def account_by_email(self, email: str) -> tuple[Account, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(t.accounts).where(t.accounts.c.email == email))
            ).first()
        if row is None:
            return None
        return Account(row.id, row.email, row.name, row.created_at, row.role), row.password_hash

    async def accounts(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.accounts).order_by(t.accounts.c.id))).all()
        return [Account(r.id, r.email, r.name, r.created_at, r.role) for r in rows]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        await self._one_write(
            t.accounts.update()
            .where(t.accounts.c.id == account_id)
            .values(password_hash=password_hash)
        )

    # --- credentials --------------------------------------------------------

    async def add_credential(self, cred: Credential) -> None:
        stmt = t.credentials.insert().values(
            id=cred.id,
            account_id=cred.account_id,
            kind=cred.kind,
            secret_hash=cred.secret_hash,
            created_at=cred.created_at,
            expires_at=cred.expires_at,
            revoked_at=cred.revoked_at,
            scopes=list(cred.scopes),
            desc=cred.desc,
            attrs=dict(cred.attrs),
        )
        try:
            await self._one_write(stmt)
        except IntegrityError:
            raise Conflict("credential id exists", field="id") from None

    async def credentials(self, account_id: int | None = None) -> list[Credential]:
        q = sa.select(t.credentials).order_by(t.credentials.c.created_at)
        if account_id is not None:
            q = q.where(t.credentials.c.account_id == account_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            Credential(
                id=r.id,
                account_id=r.account_id,
                kind=r.kind,
                secret_hash=r.secret_hash,
                created_at=r.created_at,
                expires_at=r.expires_at,
                revoked_at=r.revoked_at,
                scopes=tuple(r.scopes),
                desc=r.desc,
                attrs=dict(r.attrs),
            )
            for r in rows
        ]

    async def revoke_credential(self, cred_id: str, at: float) -> None:
        await self._one_write(
            t.credentials.update().where(t.credentials.c.id == cred_id).values(revoked_at=at)
        )

    # --- registry -----------------------------------------------------------

    async def add_device(self, device: Device) -> Device:
        stmt = t.devices.insert().values(**_device_row(device))
        try:
            res = await self._one_write(stmt)
        except IntegrityError:
            raise Conflict(
                f"a device with serial {device.serial!r} exists", field="serial"
            ) from None
        return Device(**{**_device_fields(device), "id": int(res.inserted_primary_key[0])})

    async def add_devices(self, devices: Sequence[Device]) -> list[Device]:
        if not devices:
            return []
        # ids taken first, then one plain executemany: RETURNING in parameter order made
        # SQLAlchemy insert row by row on SQLite
        try:
            async with self._write, self.engine.begin() as conn:
                ids = await _new_device_ids(conn, len(devices))
                rows = [{"id": i, **_device_row(d)} for d, i in zip(devices, ids, strict=True)]
                await conn.execute(t.devices.insert(), rows)
        except IntegrityError:
            raise Conflict("a device with one of these serials exists", field="serial") from None
        return [dataclasses.replace(d, id=i) for d, i in zip(devices, ids, strict=True)]

    async def devices(self, ids: Sequence[int] | None = None) -> list[Device]:
        query = sa.select(t.devices).order_by(t.devices.c.id)
        if ids is not None:
            query = query.where(t.devices.c.id.in_(sorted(set(ids))))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Device(
                id=r.id,
                account_id=r.account_id,
                serial=r.serial,
                model=r.model,
                name=r.name,
                created_at=r.created_at,
                tags=tuple(r.tags),
                attrs=dict(r.attrs),
                simulated=bool(r.simulated),
            )
            for r in rows
        ]

    async def update_device(self, device: Device) -> None:
        await self._one_write(
            t.devices.update().where(t.devices.c.id == device.id).values(**_device_row(device))
        )

    async def nvram(self) -> dict[int, Json]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.nvram))).all()
        return {r.device_id: r.blob for r in rows}

    # --- history and commands ----------------------------------------------

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

    async def command(self, command_id: str) -> CommandRecord | None:
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(sa.select(t.commands).where(t.commands.c.id == command_id))
            ).first()
        if r is None:
            return None
        return CommandRecord(
            id=r.id,
            device_id=r.device_id,
            account_id=r.account_id,
            name=r.name,
            params=r.params,
            state=CommandState(r.state),
            created_at=r.created_at,
            updated_at=r.updated_at,
            result=r.result,
            error=r.error,
        )

    async def meta(self, key: str) -> Json | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key))).first()
        return None if r is None else r.value

    async def claim(self, key: str, value: Json) -> Json:
        try:
            await self._one_write(t.meta.insert().values(key=key, value=value))
        except IntegrityError:  # taken: by another worker, or before this one's restart
            return await self.meta(key)
        return value

    async def sweep_meta(self, prefix: str, done: Callable[[str, Json], bool]) -> int:
        async with self._write, self.engine.begin() as conn:
            return await sweep_meta(conn, prefix, done)

    # --- group commit -------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        async with self._write:
            if self._sqlite is not None:
                await self._sqlite.commit(batch)
            elif self._copy:
                await self._commit_asyncpg(batch)
            else:
                async with self.engine.begin() as conn:
                    await self._commit_driver_sql(conn, batch)
            self._recent += len(batch.statuses)
            if self._recent >= self._archive_rows:
                await self._archive()

    async def _archive(self) -> None:
        """Move the oldest recent statuses to the archive; the batch before is committed
        whatever happens here, so a failed move is logged and tried again next commit."""
        try:
            if self._sqlite is not None:
                moved = await self._sqlite.archive()
            elif self._copy:
                moved = await self._archive_asyncpg()
            else:
                moved = await self._archive_driver_sql()
        except Exception as err:  # the next commit tries again
            log.warning("moving statuses to the archive failed: %s", err)
            return
        self._recent -= moved

    async def _archive_driver_sql(self) -> int:
        a = self.writes.archive
        async with self.engine.begin() as conn:
            hi = (await conn.exec_driver_sql(a.bound)).scalar()
            if hi is None:
                return 0
            segment = (await conn.exec_driver_sql(a.segment)).scalar()
            span = (await conn.exec_driver_sql(a.span, (hi,))).one()
            moved = (await conn.exec_driver_sql(a.copy, (segment, hi))).rowcount
            await conn.exec_driver_sql(a.record, (segment, *span, moved))
            await conn.exec_driver_sql(a.delete, (hi,))
        return int(moved)

    async def _archive_asyncpg(self) -> int:
        a = self.writes.archive
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            try:
                async with pg.transaction(isolation="repeatable_read"):
                    await pg.execute(a.lock)  # before the snapshot: it sees every row
                    await pg.execute(MOVE_WORK_MEM)
                    hi = await pg.fetchval(a.bound)
                    if hi is None:
                        return 0
                    newest = await pg.fetchval(a.newest)
                    segment = await pg.fetchval(a.segment)
                    first, last = await pg.fetchrow(a.span, hi)
                    status = await pg.execute(a.copy, segment, hi)
                    moved = int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"
                    await pg.execute(a.record, segment, first, last, moved)
                    if hi == newest:
                        await _truncate_or_delete(pg, a, hi)
                    else:
                        await pg.execute(a.delete, hi)
            except BaseException:
                raw.invalidate()
                raise
        return moved

    async def _commit_driver_sql(self, conn: AsyncConnection, batch: Batch) -> None:
        """In-memory SQLite: one executemany per table inside SQLAlchemy's transaction."""
        for stmt, rows in bulk.planned(self.writes, batch):
            await conn.exec_driver_sql(stmt.sql, rows)

    async def _commit_asyncpg(self, batch: Batch) -> None:
        """PostgreSQL: statuses by COPY (several times executemany's rate), one transaction."""
        w = self.writes
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            try:
                async with pg.transaction():
                    for stmt, rows in bulk.planned(w, batch):
                        if stmt is w.statuses:
                            await pg.copy_records_to_table(
                                "statuses", records=rows, columns=stmt.columns
                            )
                        else:
                            await pg.executemany(stmt.sql, rows)
            except BaseException:
                raw.invalidate()  # SQLAlchemy did not see the error: never reuse the link
                raise


async def _truncate_or_delete(pg: Any, a: bulk.Archive, hi: int) -> None:
    """Empty PostgreSQL's recent table after a move that took every row: TRUNCATE when it
    gets its lock in time (it needs every reader gone) and the role may; else DELETE."""
    await pg.execute(TRUNCATE_LOCK_TIMEOUT)
    try:
        async with pg.transaction():  # a savepoint: a refused TRUNCATE leaves the move whole
            await pg.execute(a.clear)
    except (asyncpg.LockNotAvailableError, asyncpg.InsufficientPrivilegeError) as err:
        log.info("emptying the recent statuses by DELETE: %s", type(err).__name__)
        await pg.execute(a.delete, hi)


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


async def _new_device_ids(conn: AsyncConnection, n: int) -> list[int]:
    """`n` device ids no one else is given: from PostgreSQL's sequence (other processes
    insert too); on SQLite after the largest (its writes are this process's, one at a
    time under the store's write lock)."""
    if conn.dialect.name == "postgresql":
        q = sa.text(
            "SELECT nextval(pg_get_serial_sequence('devices', 'id')) FROM generate_series(1, :n)"
        )
        return [int(r[0]) for r in await conn.execute(q, {"n": n})]
    top = (await conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.devices.c.id), 0)))).scalar()
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))


def _device_fields(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "account_id": d.account_id,
        "serial": d.serial,
        "model": d.model,
        "name": d.name,
        "created_at": d.created_at,
        "tags": d.tags,
        "attrs": d.attrs,
        "simulated": d.simulated,
    }


def _device_row(d: Device) -> dict[str, Any]:
    row = _device_fields(d)
    del row["id"]
    row["tags"] = list(d.tags)
    row["attrs"] = dict(d.attrs)
    return row
