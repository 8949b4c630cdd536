"""A database made by an older release upgrades in place, its history intact."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from switchgear.core.model import Device, StatusKind, StatusRecord
from switchgear.core.ports import Batch
from switchgear.errors import MqttIdTaken
from switchgear.links import twinwire
from switchgear.storage import SqlStore
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import MIGRATIONS
from switchgear.storage.url import async_url
from tests.storage.conftest import empty_schema


@contextmanager
def _begin(url: str) -> Iterator[sa.Connection]:
    """A transaction on a plain engine of its own, disposed after."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _alembic(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _at_revision(url: str, revision: str) -> None:
    with _begin(url) as conn:
        command.upgrade(_alembic(conn), revision)
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, name, password_hash, created_at) "
            "VALUES (7, 'a@x.io', 'A', 'h', 1.0)"
        ))  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO devices (id, account_id, serial, model, name, created_at, tags, attrs,"
            " simulated) VALUES (3, 7, 'S1', 'SHPLG-1', 'plug', 1.0, '[]', '{}', 1)"
        ))  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO statuses (id, device_id, ts, kind, reason, channel, data) "
            "VALUES ('old1', 3, 5.0, 'relay', 'api', 0, '{\"on\": true}')"
        ))  # fmt: skip


async def test_statuses_from_0001_gain_their_account_on_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0001")
    store = SqlStore(url)
    await store.open()
    try:
        page = await store.history(None, 0, 10, account_id=7)
        assert [(r.id, r.account_id) for r in page.records] == [("old1", 7)]
    finally:
        await store.close()


async def test_statuses_from_0002_move_to_the_archive_after_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0002")
    store = SqlStore(url, archive_rows=2)
    await store.open()
    try:
        await store.commit(
            Batch(statuses=[StatusRecord("new1", 3, 6.0, StatusKind.RELAY, "api", {}, 0, 7)])
        )
        async with store.engine.connect() as conn:
            archived = (await conn.execute(sa.select(t.statuses_archive.c.id))).scalars().all()
        assert sorted(archived) == ["new1", "old1"]
        page = await store.history([3], 0, 10)
        assert [r.id for r in page.records] == ["old1", "new1"]
    finally:
        await store.close()


async def test_an_archive_from_0003_becomes_the_first_segment_and_downgrades_intact(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0003")
    with _begin(url) as conn:  # what 0003's store did: old1 (and old0) moved
        conn.execute(sa.text(
            "INSERT INTO statuses (id, device_id, ts, kind, reason, channel, data, account_id) "
            "VALUES ('old0', 3, 4.0, 'relay', 'api', 0, '{}', 7)"
        ))  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO statuses_archive SELECT seq, id, device_id, ts, kind, reason, channel,"
            " data, 7 FROM statuses"
        ))  # fmt: skip
        conn.execute(sa.text("DELETE FROM statuses"))
    store = SqlStore(url, archive_rows=1)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            spans = (await conn.execute(sa.select(t.status_segments))).all()
        assert [tuple(r) for r in spans] == [(1, 4.0, 5.0, 2)]
        await store.commit(
            Batch(statuses=[StatusRecord("new1", 3, 6.0, StatusKind.RELAY, "api", {}, 0, 7)])
        )
        async with store.engine.connect() as conn:
            got = (
                await conn.execute(sa.select(t.statuses_archive.c.segment, t.statuses_archive.c.id))
            ).all()
        assert sorted(tuple(r) for r in got) == [(1, "old0"), (1, "old1"), (2, "new1")]
        page = await store.history([3], 0, 10)
        assert [r.id for r in page.records] == ["old0", "old1", "new1"]
        page = await store.history(None, 0, 10, account_id=7)
        assert [r.id for r in page.records] == ["old0", "old1", "new1"]
    finally:
        await store.close()
    with _begin(url) as conn:
        command.downgrade(_alembic(conn), "0003")
        ids = conn.execute(sa.text("SELECT id FROM statuses_archive ORDER BY ts")).scalars().all()
    assert ids == ["old0", "old1", "new1"]


async def test_statuses_from_0004_number_on_past_every_archived_seq(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0004")  # old1 recent (seq 1); an archived row numbered 50
    with _begin(url) as conn:
        conn.execute(sa.text(
            "INSERT INTO statuses_archive (segment, seq, id, device_id, ts, kind, reason, data)"
            " VALUES (1, 50, 'arch', 3, 1.0, 'relay', 'api', '{}')"
        ))  # fmt: skip
        conn.execute(sa.text("INSERT INTO status_segments VALUES (1, 1.0, 1.0, 1)"))
    store = SqlStore(url)
    await store.open()
    try:
        await store.commit(
            Batch(statuses=[StatusRecord("new1", 3, 6.0, StatusKind.RELAY, "api", {}, 0, 7)])
        )
        async with store.engine.connect() as conn:
            seqs = dict((await conn.execute(sa.select(t.statuses.c.id, t.statuses.c.seq))).all())
        assert seqs["old1"] == 1 and seqs["new1"] > 50
        page = await store.history([3], 0, 10)
        assert [r.id for r in page.records] == ["arch", "old1", "new1"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_the_migrations_build_the_schema_the_code_declares(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    store = SqlStore(url)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            with warnings.catch_warnings():  # SQLite's expression indexes are not reflected:
                for skipped in (
                    ".*reflection of expression-based index",  # checked below
                    ".*skipping metadata-specified expression-based index",
                ):
                    warnings.filterwarnings("ignore", skipped)  # fmt: skip
                diff = await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), t.metadata)
                )
            if backend == "sqlite":
                ddl = (await conn.execute(sa.text(
                    "SELECT sql FROM sqlite_master WHERE name = 'uq_devices_mqtt_id_lower'"
                ))).scalar_one()  # fmt: skip
                assert ddl.endswith("ON devices (lower(mqtt_id))")
    finally:
        await store.close()
    assert diff == []


async def test_commands_from_0005_are_kept_by_id_and_downgrade_intact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0005")
    with _begin(url) as conn:
        conn.execute(sa.text(
            "INSERT INTO commands VALUES ('c1', 3, 7, 'switch', '{\"action\": \"on\"}', 'done',"
            " 1.0, 2.0, '{\"codes\": []}', NULL)"
        ))  # fmt: skip
    store = SqlStore(url)
    await store.open()
    try:
        rec = await store.command("c1")
        assert rec is not None and (rec.state.value, rec.params) == ("done", {"action": "on"})
        async with store.engine.connect() as conn:
            ddl = (await conn.execute(sa.text(
                "SELECT sql FROM sqlite_master WHERE name = 'commands'"
            ))).scalar_one()  # fmt: skip
        assert ddl.endswith("WITHOUT ROWID")
    finally:
        await store.close()
    with _begin(url) as conn:
        command.downgrade(_alembic(conn), "0005")
        kept = conn.execute(sa.text("SELECT id, updated_at FROM commands")).all()
        index = conn.execute(sa.text(
            "SELECT count(*) FROM sqlite_master WHERE name = 'ix_commands_device_id'"
        )).scalar_one()  # fmt: skip
    assert [tuple(r) for r in kept] == [("c1", 2.0)] and index == 1


async def _at_0008_with_devices(url: str) -> None:
    """A database as 0008 left it: a twin on its derived id, one on a chosen id, an adopted
    Shelly, a polled meter, and a twin that a race placed on the first twin's id."""
    derived = twinwire.mqtt_id(Device(3, 7, "S1", "SHPLG-1", "plug", 1.0))
    rows = [
        (3, "S1", "SHPLG-1", "{}", True),
        (4, "S2", "SHPLG-1", '{"twin_mqtt_id": "shellyplug-C0FFEE"}', True),
        (5, "shellyplug-ADDED0", "SHPLG-1",
         '{"protocol": "shelly-gen1", "mqtt_id": "shellyplug-ADDED0"}', False),
        (6, "1728053300", "D101",
         '{"url": "http://192.0.2.1/", "devpass": "123456", "version": "standard"}', False),
        (7, "S3", "SHPLG-1", json.dumps({"twin_mqtt_id": derived}), True),
    ]  # fmt: skip
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic(c), "0008"))
            await conn.execute(sa.text(
                "INSERT INTO accounts (id, email, name, password_hash, created_at) "
                "VALUES (7, 'a@x.io', 'A', 'h', 1.0)"
            ))  # fmt: skip
            for key, serial, model, attrs, simulated in rows:
                await conn.execute(
                    sa.text(
                        "INSERT INTO devices (id, account_id, serial, model, name, created_at,"
                        f" tags, attrs, simulated) VALUES ({key}, 7, '{serial}', '{model}',"
                        f" 'd', 1.0, '[]', '{attrs}', {'TRUE' if simulated else 'FALSE'})"
                    )
                )
            if conn.dialect.name == "postgresql":  # past the ids given above
                await conn.execute(sa.text("SELECT setval('devices_id_seq', 100)"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_devices_from_0008_keep_their_mqtt_ids_and_the_store_guards_them(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    await _at_0008_with_devices(url)
    derived = twinwire.mqtt_id(Device(3, 7, "S1", "SHPLG-1", "plug", 1.0))
    store = SqlStore(url)
    await store.open()
    try:
        ids = {d.id: twinwire.mqtt_id(d) for d in await store.devices() if d.simulated}
        assert ids == {3: derived, 4: "shellyplug-C0FFEE", 7: derived}  # none moved
        async with store.engine.connect() as conn:
            column = dict(
                (await conn.execute(sa.select(t.devices.c.id, t.devices.c.mqtt_id))).all()
            )
        # the race's second twin keeps its id, out of the index (its first holder has it)
        assert column == {3: derived, 4: "shellyplug-C0FFEE", 5: "shellyplug-ADDED0", 6: None,
                          7: None}  # fmt: skip
        for taken in (derived, "shellyplug-C0FFEE", "shellyplug-ADDED0"):
            with pytest.raises(MqttIdTaken):
                await store.add_device(
                    Device(0, 7, "S9", "SHPLG-1", "new", 2.0, (), {twinwire.ID_ATTR: taken})
                )
        await store.add_device(Device(0, 7, "S9", "SHPLG-1", "new", 2.0))
    finally:
        await store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_devices_from_0009_keep_one_mqtt_id_whatever_its_case(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0009's index told ids apart by case: a Shelly adopted as Gen1 and again as Gen2
    (its MAC spelled in upper, then lower case) holds two rows. The first keeps the id in
    the column; the later one keeps its attrs, out of the index, as 0009 did."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    gen1, gen2 = '{"protocol": "shelly-gen1", ', '{"protocol": "shelly-gen2", '
    rows = [
        (3, "shellyplug-ABCDEF", "SHPLG-1", gen1 + '"mqtt_id": "shellyplug-ABCDEF"}', False),
        (4, "shellyplug-abcdef", "SNPL-00112EU", gen2 + '"mqtt_id": "shellyplug-abcdef"}', False),
        (5, "S1", "SHPLG-1", '{"twin_mqtt_id": "shellyplug-C0FFEE"}', True),
        (6, "shellyplug-c0ffee", "SNPL-00112EU", gen2 + '"mqtt_id": "shellyplug-c0ffee"}', False),
        (7, "shellyplug-BEEF00", "SHPLG-1", gen1 + '"mqtt_id": "shellyplug-BEEF00"}', False),
        (8, "1728053300", "D101",
         '{"url": "http://192.0.2.1/", "devpass": "123456", "version": "standard"}', False),
    ]  # fmt: skip
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic(c), "0009"))
            await conn.execute(sa.text(
                "INSERT INTO accounts (id, email, name, password_hash, created_at) "
                "VALUES (7, 'a@x.io', 'A', 'h', 1.0)"
            ))  # fmt: skip
            for key, serial, model, attrs, simulated in rows:
                mqtt_id = json.loads(attrs).get("mqtt_id") or json.loads(attrs).get("twin_mqtt_id")
                await conn.execute(
                    sa.text(
                        "INSERT INTO devices (id, account_id, serial, model, name, created_at,"
                        " tags, attrs, simulated, mqtt_id) VALUES (:id, 7, :serial, :model,"
                        " 'd', 1.0, '[]', :attrs, :simulated, :mqtt_id)"
                    ),
                    {"id": key, "serial": serial, "model": model, "attrs": attrs,
                     "simulated": simulated, "mqtt_id": mqtt_id},
                )  # fmt: skip
            if conn.dialect.name == "postgresql":  # past the ids given above
                await conn.execute(sa.text("SELECT setval('devices_id_seq', 100)"))
    finally:
        await engine.dispose()
    store = SqlStore(url)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            column = dict(
                (await conn.execute(sa.select(t.devices.c.id, t.devices.c.mqtt_id))).all()
            )
        assert column == {3: "shellyplug-ABCDEF", 4: None, 5: "shellyplug-C0FFEE", 6: None,
                          7: "shellyplug-BEEF00", 8: None}  # fmt: skip
        kept = {d.id: d.attrs.get("mqtt_id") for d in await store.devices()}
        assert kept[4] == "shellyplug-abcdef" and kept[6] == "shellyplug-c0ffee"  # as they were
        for taken in ("shellyplug-abcdef", "SHELLYPLUG-C0FFEE", "shellyplug-beef00"):
            with pytest.raises(MqttIdTaken) as refused:
                await store.add_device(
                    Device(0, 7, "S9", "SHPLG-1", "new", 2.0, (), {twinwire.ID_ATTR: taken})
                )
            assert refused.value.taken == {taken}
        await store.add_device(
            Device(0, 7, "S9", "SHPLG-1", "new", 2.0, (), {twinwire.ID_ATTR: "shellyplug-123456"})
        )
    finally:
        await store.close()
    engine = create_async_engine(async_url(url))
    try:  # and back: 0009's index, over ids unique in any case
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic(c), "0009"))
            with pytest.raises(sa.exc.IntegrityError):
                async with conn.begin_nested():
                    await conn.execute(sa.text(
                        "UPDATE devices SET mqtt_id = 'shellyplug-ABCDEF' WHERE id = 5"
                    ))  # fmt: skip
            await conn.execute(sa.text(
                "UPDATE devices SET mqtt_id = 'shellyplug-abcdef' WHERE id = 4"
            ))  # fmt: skip
    finally:
        await engine.dispose()
