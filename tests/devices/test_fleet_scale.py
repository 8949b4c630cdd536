"""A grid step reaches the account's twins only: its cost does not grow with the fleet."""

from __future__ import annotations

from switchgear.core.model import Device
from switchgear.devices.powercontroller import PowerControllerTwin
from tests.api.test_registration_scale import Steps
from tests.devices.harness import T0, make_bench
from tests.devices.test_powercontroller import MODEL, SEED_FFR, configure

TENANT, OTHER = 1, 2


async def test_a_grid_step_reaches_the_accounts_twins_without_walking_the_fleet() -> None:
    counts = []
    for others in (40, 800):
        b = make_bench()
        for i in range(others):  # registered first: a walk would pass them all
            b.fleet.add(Device(100 + i, OTHER, f"SP{i:06d}", "SHPLG-1", "plug", T0))
        twins = []
        for i in range(3):
            twin = b.fleet.add(Device(10 + i, TENANT, f"PC-TENANT{i}-001", MODEL, "pc", T0))
            assert isinstance(twin, PowerControllerTwin)
            assert configure(twin, ffr=SEED_FFR) == (True, (108,))
            twins.append(twin)
        b.fleet.remove(11)  # removed: no longer on the account's grid
        counter = Steps()
        with counter.on():
            b.fleet.set_grid(TENANT, frequency_hz=59.6)
        counts.append(counter.count)
        await b.advance(10 / 60 + 1e-9)  # ten cycles under the trip threshold
        assert [t.relay.on for t in twins] == [False, True, False]
    assert counts[1] <= counts[0] * 1.05, f"{counts[0]} lines beside 40 twins, {counts[1]} at 800"
