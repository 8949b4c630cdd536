"""Registrations racing for one twin MQTT id, on workers that have not heard of each other:
the store's unique MQTT id decides, and the loser's twin moves to a free id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from switchgear.core.model import Device
from switchgear.errors import Conflict
from switchgear.links import twinwire
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_adopt_workers import workers  # noqa: F401 (two runtimes, one database)
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

WANTED = "shellyplug-C0FFEE"
KEY = "test-secret-key-of-at-least-32-bytes"


def plug(account_id: int, serial: str) -> Device:
    return Device(0, account_id, serial, "SHPLG-1", serial, 0.0)


def wanting(ids: dict[str, str]) -> Callable[[Device, int], str]:
    """An id generator whose first candidate for a serial in `ids` is the id given there
    (as two serials' hashes may agree); its later candidates are the real ones."""

    def candidate(device: Device, attempt: int) -> str:
        if attempt == 0 and device.serial in ids:
            return ids[device.serial]
        return twinwire.candidate(device, attempt)

    return candidate


def stored_ids(devices: list[Device]) -> dict[str, str]:
    return {d.serial: twinwire.mqtt_id(d) for d in devices}


@pytest.mark.postgres
async def test_two_workers_registering_twins_on_one_id_at_once_give_them_two(
    workers: tuple[Runtime, Runtime],  # noqa: F811 (the fixture)
) -> None:
    a, b = workers
    account = await a.auth.create_account("m@example.com", "M", "correct horse M")
    a.twin_id = b.twin_id = wanting({"SPG-A": WANTED, "SPG-B": WANTED})
    made = await asyncio.gather(
        a.add_device(plug(account.id, "SPG-A")), b.add_device(plug(account.id, "SPG-B"))
    )
    ids = stored_ids(list(made))
    assert len(set(ids.values())) == 2 and WANTED in ids.values()
    assert stored_ids(await a.store.devices()) == ids  # both stored, each under its own
    moved = next(d for d in made if twinwire.mqtt_id(d) != WANTED)
    assert moved.attrs[twinwire.ID_ATTR] == twinwire.candidate(moved, 1)
    # the loser's worker has learnt the id is taken
    assert a.mqtt_id_taken(WANTED) and b.mqtt_id_taken(WANTED)


@pytest.mark.postgres
async def test_two_bulk_registrations_at_once_move_only_the_clashing_twins(
    workers: tuple[Runtime, Runtime],  # noqa: F811 (the fixture)
) -> None:
    a, b = workers
    account = await a.auth.create_account("m@example.com", "M", "correct horse M")
    wanted = {"A1": "shellyplug-00000A", "A2": WANTED, "A3": "shellyplug-00000C",
              "B1": "shellyplug-00000D", "B2": WANTED, "B3": "shellyplug-00000F"}  # fmt: skip
    a.twin_id = b.twin_id = wanting(wanted)
    made = await asyncio.gather(
        a.add_devices([plug(account.id, s) for s in ("A1", "A2", "A3")]),
        b.add_devices([plug(account.id, s) for s in ("B1", "B2", "B3")]),
    )
    ids = stored_ids(made[0] + made[1])
    assert len(set(ids.values())) == 6
    assert stored_ids(await b.store.devices()) == ids
    moved = {s for s, i in ids.items() if i != wanted[s]}
    assert moved in ({"A2"}, {"B2"})  # the others keep the id they were placed on


@pytest.mark.postgres
async def test_a_twin_and_an_adoption_on_two_workers_never_end_on_one_id(
    workers: tuple[Runtime, Runtime],  # noqa: F811 (the fixture)
) -> None:
    a, b = workers
    account = await a.auth.create_account("m@example.com", "M", "correct horse M")
    a.twin_id = wanting({"SPG-A": WANTED, "SPG-C": "shellyplug-ADDED0"})
    await a.add_device(plug(account.id, "SPG-A"))
    # b has not heard of the twin: the store refuses the adoption all the same
    with pytest.raises(Conflict, match="adopted already"):
        await b.adopt(account.id, "shelly-gen1", WANTED, "Kettle", None)
    # and the other way round: an adopted id is no new twin's
    await b.adopt(account.id, "shelly-gen1", "shellyplug-ADDED0", "Heater", None)
    twin = await a.add_device(plug(account.id, "SPG-C"))
    assert twinwire.mqtt_id(twin) not in ("shellyplug-ADDED0", WANTED)
    assert len(await a.store.devices()) == 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sg.db'}"
    url: str = request.getfixturevalue("pg_database")
    await empty_schema(url)
    return url


async def test_a_twin_on_an_id_stored_behind_the_workers_back_moves_to_a_free_one(
    database: str,
) -> None:
    """What another process stored is not in this one's registry: the store decides, one
    device or many, and a restart finds every twin under the id it was stored with."""
    rt = await Runtime.start(Settings(database_url=database, speed=0, secret_key=KEY))
    try:
        account = await rt.auth.create_account("m@example.com", "M", "correct horse M")
        elsewhere = Device(0, account.id, "SPG-X", "SHPLG-1", "x", 0.0, (), {
            twinwire.ID_ATTR: WANTED}, True)  # fmt: skip
        await rt.store.add_devices([elsewhere, plug(account.id, "SPG-Y")])
        taken = twinwire.mqtt_id(plug(account.id, "SPG-Y"))
        rt.twin_id = wanting({"SPG-1": WANTED, "SPG-2": "shellyplug-ABCDEF", "SPG-3": taken})
        one = await rt.add_device(plug(account.id, "SPG-1"))
        many = await rt.add_devices([plug(account.id, "SPG-2"), plug(account.id, "SPG-3")])
        ids = stored_ids([one, *many])
        assert ids["SPG-2"] == "shellyplug-ABCDEF"
        assert ids["SPG-1"] not in (WANTED, taken) and ids["SPG-3"] not in (WANTED, taken)
        assert len({*ids.values(), WANTED, taken}) == 5
    finally:
        await rt.stop()
    rt = await Runtime.start(Settings(database_url=database, speed=0, secret_key=KEY))
    try:
        after = stored_ids(list(rt.engine.all_devices()))
        assert after == {"SPG-X": WANTED, "SPG-Y": taken, **ids}
    finally:
        await rt.stop()
