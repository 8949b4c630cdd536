"""Simulated plugs' MQTT ids across a fleet: each device its own broker session."""

from __future__ import annotations

import re
from pathlib import Path

from switchgear.core.model import Device
from switchgear.links import twinwire
from switchgear.runtime import Runtime
from switchgear.settings import Settings

GEN1_ID = re.compile(r"^shellyplug-[0-9A-F]{6}$")  # a Gen1 plug's: 6 hex digits of its MAC


def _plug(serial: str, account_id: int = 1) -> Device:
    return Device(0, account_id, serial, "SHPLG-1", serial, 0.0)


def _colliding_serials() -> tuple[str, str]:
    """Two plug serials whose derived MQTT ids are one (the birthday bound: a few in 10,000)."""
    seen: dict[str, str] = {}
    for k in range(10_000):
        serial = f"SPG{k:07d}"
        derived = twinwire.mqtt_id(_plug(serial))
        if derived in seen:
            return seen[derived], serial
        seen[derived] = serial
    raise AssertionError("no pair of 10,000 serials shares a derived id")


def _settings(url: str) -> Settings:
    return Settings(database_url=url, speed=0, secret_key="test-secret-key-of-at-least-32-bytes")


async def test_ten_thousand_plugs_have_ten_thousand_mqtt_ids_of_the_gen1_form() -> None:
    rt = await Runtime.start(_settings("memory://"))
    try:
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        serials = [f"SPG{k:07d}" for k in range(10_000)]
        stored = await rt.add_devices([_plug(s, account.id) for s in serials])
        ids = [twinwire.mqtt_id(d) for d in stored]
        assert len(set(ids)) == len(serials)
        assert all(GEN1_ID.match(i) for i in ids)
        # only the twins whose derived id was taken carry a chosen one
        assert 0 < sum(twinwire.ID_ATTR in d.attrs for d in stored) < 20
    finally:
        await rt.stop()


async def test_a_plug_added_alone_does_not_take_an_id_of_an_earlier_plug() -> None:
    first, second = _colliding_serials()
    rt = await Runtime.start(_settings("memory://"))
    try:
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        a = await rt.add_device(_plug(first, account.id))
        b = await rt.add_device(_plug(second, account.id))
        assert twinwire.mqtt_id(a) == twinwire.mqtt_id(_plug(first))  # the derived one
        assert twinwire.mqtt_id(b) not in (twinwire.mqtt_id(a), "")
        assert GEN1_ID.match(twinwire.mqtt_id(b))
        assert rt.mqtt_id_taken(twinwire.mqtt_id(b))
    finally:
        await rt.stop()


async def test_twins_keep_their_mqtt_ids_across_a_restart(tmp_path: Path) -> None:
    """A twin stored before ids were chosen (no attr) keeps its derived id; a chosen one is
    stored: a twin whose id changed would lose its retained messages and session."""
    first, second = _colliding_serials()
    url = f"sqlite:///{tmp_path / 'sg.db'}"
    rt = await Runtime.start(_settings(url))
    try:
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        before = {
            d.serial: twinwire.mqtt_id(d)
            for d in await rt.add_devices([_plug(first, account.id), _plug(second, account.id)])
        }
    finally:
        await rt.stop()
    rt = await Runtime.start(_settings(url))
    try:
        after = {d.serial: twinwire.mqtt_id(d) for d in rt.engine.all_devices()}
        assert after == before and len(set(after.values())) == 2
    finally:
        await rt.stop()
