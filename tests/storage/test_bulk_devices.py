"""Adding many devices at once: ids in order, all or none (every backend)."""

from __future__ import annotations

import pytest

from switchgear.errors import Conflict
from tests.storage.conftest import StoreFactory
from tests.storage.test_store import device, opened


async def test_many_devices_get_ids_in_order_and_a_taken_serial_adds_none(
    make_store: StoreFactory,
) -> None:
    async with opened(make_store) as store:
        a = await store.add_account("a@x.io", "A", "h")
        await store.add_device(device(a.id, "S0"))
        added = await store.add_devices([device(a.id, f"S{i}") for i in range(1, 301)])
        assert [d.serial for d in added] == [f"S{i}" for i in range(1, 301)]
        assert len({d.id for d in added}) == 300 and min(d.id for d in added) > 0
        by_id = {d.id: d.serial for d in await store.devices()}
        assert all(by_id[d.id] == d.serial for d in added)
        with pytest.raises(Conflict):
            await store.add_devices([device(a.id, "S400"), device(a.id, "S5")])
        assert "S400" not in {d.serial for d in await store.devices()}
    async with opened(make_store) as store:  # and they are there after a restart
        assert len(await store.devices()) == 301
