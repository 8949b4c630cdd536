"""The per-account cap on polled meters is kept by the store, in the write itself."""

from __future__ import annotations

import asyncio

import pytest

from switchgear.errors import MetersCapped
from tests.storage.conftest import StoreFactory
from tests.storage.test_mqtt_ids import polled, twin
from tests.storage.test_store import opened


async def test_a_write_past_the_accounts_meter_cap_stores_nothing(make_store: StoreFactory) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        b = await store.add_account("b@x.io", "B", "h")
        await store.add_device(polled(a.id, "1000000001"), meters_most=2)
        with pytest.raises(MetersCapped):  # all or none: the first would fit alone
            await store.add_devices(
                [polled(a.id, "1000000002"), polled(a.id, "1000000003")], meters_most=2
            )
        await store.add_devices([polled(a.id, "1000000002"), twin(a.id, "SPG1")], meters_most=2)
        with pytest.raises(MetersCapped):
            await store.add_device(polled(a.id, "1000000004"), meters_most=2)
        await store.add_device(polled(b.id, "1000000005"), meters_most=2)  # another account's
        await store.add_device(twin(a.id, "SPG2"), meters_most=2)  # not a meter
        serials = {d.serial for d in await store.devices()}
        assert serials == {"1000000001", "1000000002", "1000000005", "SPG1", "SPG2"}


@pytest.mark.postgres
async def test_two_processes_registering_meters_at_once_keep_the_cap(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    if "postgres" not in request.node.callspec.params.get("make_store", ""):
        pytest.skip("two processes share PostgreSQL only")
    async with opened(make_store) as one, opened(make_store) as two:
        a = await one.add_account("a@x.io", "A", "h")
        for n in range(5):  # each round: one of the two writes fits, the other is refused
            racing = [
                store.add_device(polled(a.id, f"20000000{n}{k}"), meters_most=n + 1)
                for k, store in enumerate((one, two))
            ]
            done = await asyncio.gather(*racing, return_exceptions=True)
            assert sorted(type(r).__name__ for r in done) == ["Device", "MetersCapped"], done
        assert len(await one.devices()) == 5
