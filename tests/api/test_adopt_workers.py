"""Two API workers on one PostgreSQL database adopting one MQTT id: the store decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchgear.errors import Conflict
from switchgear.links.mqttclient import MemoryBroker
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def workers(pg_database: str) -> AsyncIterator[tuple[Runtime, Runtime]]:  # noqa: F811
    """Two runtimes on one database, each on a broker of its own: neither hears of the
    other's adoptions (the widest race: as if the peers' message had not arrived yet)."""
    await empty_schema(pg_database)
    settings = Settings(database_url=pg_database, speed=1,
                        secret_key="test-secret-key-of-at-least-32-bytes")  # fmt: skip
    a = await Runtime.start(settings, mqtt=MemoryBroker().transport())
    b = await Runtime.start(settings, mqtt=MemoryBroker().transport())
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


@pytest.mark.parametrize("second", ["shelly-gen1", "shelly-gen2"])  # gen2: MAC in lower case
async def test_two_workers_adopting_one_mqtt_id_at_once_admit_one(
    workers: tuple[Runtime, Runtime], second: str
) -> None:
    a, b = workers
    mine = await a.auth.create_account("m@example.com", "M", "correct horse M")
    theirs = await a.auth.create_account("t@example.com", "T", "correct horse T")
    results = await asyncio.gather(
        a.adopt(mine.id, "shelly-gen1", "shellyplug-C0FFEE", "Kettle", None),
        b.adopt(theirs.id, second, "shellyplug-C0FFEE", "Heater", None),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1 and refused[0].message == "this device is adopted already"
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert len(await a.store.devices()) == 1
    # afterwards too, on either worker, whatever account asks
    for rt, account in ((a, theirs), (b, mine)):
        with pytest.raises(Conflict, match="adopted already"):
            await rt.adopt(account.id, second, "shellyplug-C0FFEE", "Again", "S-2")


async def test_an_adoption_refused_for_its_serial_leaves_the_mqtt_id_free(
    workers: tuple[Runtime, Runtime],
) -> None:
    a, b = workers
    mine = await a.auth.create_account("m@example.com", "M", "correct horse M")
    await a.adopt(mine.id, "shelly-gen1", "shellyplug-AAAAAA", "First", "SERIAL-1")
    # b has not heard of SERIAL-1: the store's unique serial refuses it, and nothing of
    # the refused device holds its MQTT id
    with pytest.raises(Conflict):
        await b.adopt(mine.id, "shelly-gen1", "shellyplug-BBBBBB", "Second", "SERIAL-1")
    made = await b.adopt(mine.id, "shelly-gen1", "shellyplug-BBBBBB", "Second", "SERIAL-2")
    assert made.attrs["mqtt_id"] == "shellyplug-BBBBBB"
