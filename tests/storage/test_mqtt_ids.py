"""Each MQTT id is one device's in the store: twins' and adopted devices' alike."""

from __future__ import annotations

import pytest

from switchgear.core.model import Device
from switchgear.errors import Conflict, MqttIdTaken
from switchgear.links import twinwire
from tests.storage.conftest import StoreFactory
from tests.storage.test_store import opened

TAKEN = "shellyplug-C0FFEE"


def twin(account_id: int, serial: str, mqtt_id: str | None = None) -> Device:
    """A simulated plug, on `mqtt_id` when given (else on its derived id)."""
    attrs = {} if mqtt_id is None else {twinwire.ID_ATTR: mqtt_id}
    return Device(0, account_id, serial, "SHPLG-1", serial, 1.0, (), attrs)


def adopted(account_id: int, mqtt_id: str) -> Device:
    attrs = {"protocol": "shelly-gen1", "mqtt_id": mqtt_id}
    return Device(0, account_id, mqtt_id, "SHPLG-1", mqtt_id, 1.0, ("mqtt",), attrs, False)


def polled(account_id: int, serial: str) -> Device:
    attrs = {"url": "http://192.0.2.1/", "devpass": "123456", "version": "standard"}
    return Device(0, account_id, serial, "D101", serial, 1.0, ("polled",), attrs, False)


async def test_a_twin_on_a_stored_mqtt_id_is_refused_and_named(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        first = await store.add_device(twin(a.id, "SPG1", TAKEN))
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_device(twin(a.id, "SPG2", TAKEN))
        assert refused.value.taken == {TAKEN} and refused.value.field == "mqtt_id"
        # a batch is all or none: its free rows are not stored either
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_devices([twin(a.id, "SPG3"), twin(a.id, "SPG4", TAKEN)])
        assert refused.value.taken == {TAKEN}
        # a derived id counts as much as a chosen one
        derived = twinwire.mqtt_id(twin(a.id, "SPG5"))
        await store.add_device(twin(a.id, "SPG5"))
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_devices([twin(a.id, "SPG6", derived)])
        assert refused.value.taken == {derived}
        stored = await store.devices()
        assert [d.serial for d in stored] == ["SPG1", "SPG5"] and stored[0].id == first.id
        # moved to a free id, the refused twin is stored
        await store.add_devices([twin(a.id, "SPG3"), twin(a.id, "SPG4", "shellyplug-C0FFEF")])
        assert len(await store.devices()) == 4


async def test_two_rows_of_one_batch_on_one_mqtt_id_are_refused(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_devices([twin(a.id, "SPG1", TAKEN), twin(a.id, "SPG2", TAKEN)])
        assert refused.value.taken == {TAKEN}
        assert await store.devices() == []


async def test_an_adopted_device_and_a_twin_never_share_an_mqtt_id(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        await store.add_device(adopted(a.id, TAKEN))
        with pytest.raises(MqttIdTaken):
            await store.add_device(twin(a.id, "SPG1", TAKEN))
        twin_id = twinwire.mqtt_id(twin(a.id, "SPG2"))
        await store.add_device(twin(a.id, "SPG2"))
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_devices([adopted(a.id, twin_id)])
        assert refused.value.taken == {twin_id}
        assert [d.serial for d in await store.devices()] == [TAKEN, "SPG2"]


async def test_devices_without_an_mqtt_id_and_taken_serials_are_as_before(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        await store.add_devices([polled(a.id, "1728053300"), polled(a.id, "1728053301")])
        await store.add_device(twin(a.id, "SPG1"))
        with pytest.raises(Conflict) as refused:  # the serial's conflict, not an id's
            await store.add_device(twin(a.id, "SPG1", TAKEN))
        assert not isinstance(refused.value, MqttIdTaken) and refused.value.field == "serial"
        assert len(await store.devices()) == 3


def adopted_gen2(account_id: int, mqtt_id: str) -> Device:
    attrs = {"protocol": "shelly-gen2", "mqtt_id": mqtt_id}
    return Device(0, account_id, mqtt_id, "SNPL-00112EU", mqtt_id, 1.0, ("mqtt",), attrs, False)


async def test_mqtt_ids_differing_in_case_only_are_one_device_s(make_store: StoreFactory) -> None:
    # a Shelly's id is its MAC: Gen1 spells its digits in upper case, Gen2 in lower case
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        await store.add_device(adopted(a.id, "shellyplug-ABCDEF"))
        with pytest.raises(MqttIdTaken) as refused:  # named as the refused device spells it
            await store.add_device(adopted_gen2(a.id, "shellyplug-abcdef"))
        assert refused.value.taken == {"shellyplug-abcdef"}
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_devices([twin(a.id, "SPG1"), twin(a.id, "SPG2", "SHELLYPLUG-abcDEF")])
        assert refused.value.taken == {"SHELLYPLUG-abcDEF"}
        with pytest.raises(MqttIdTaken) as refused:  # two of one batch
            await store.add_devices([twin(a.id, "SPG3", "shellyplug-C0FFEE"),
                                     twin(a.id, "SPG4", "shellyplug-c0ffee")])  # fmt: skip
        assert refused.value.taken == {"shellyplug-C0FFEE", "shellyplug-c0ffee"}
        assert [d.serial for d in await store.devices()] == ["shellyplug-ABCDEF"]
        await store.add_device(twin(a.id, "SPG3", "shellyplug-C0FFEE"))
    async with opened(make_store) as store:  # reopened: the stored ids still guard theirs
        with pytest.raises(MqttIdTaken) as refused:
            await store.add_device(twin(a.id, "SPG5", "ShellyPlug-c0ffee"))
        assert refused.value.taken == {"ShellyPlug-c0ffee"}
        assert len(await store.devices()) == 2
