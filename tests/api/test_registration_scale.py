"""One more registration costs as much with a large fleet as with a small one (issue #26).

Counted, not timed: the lines of switchgear's own code that one registration runs, with a
small fleet and with one twenty times as large (simulated devices and adopted Shellies,
all of the registering account). A scan over the fleet, the account's devices or the
adopted Shellies runs its lines once a device, so it shows as hundreds of lines more.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import switchgear
from switchgear import onboarding
from switchgear.core.model import Device
from switchgear.dialects.meterhttp.byid import meters
from switchgear.dialects.powercontroller.ids import device_id, index
from switchgear.links.mqttclient import MemoryBroker
from switchgear.runtime import Runtime
from switchgear.settings import Settings

SRC = str(Path(switchgear.__file__).parent)
# the in-memory broker's filter matching is a broker's work, not the server's: not counted
BROKER_FAKE = str(Path(SRC) / "links" / "mqttclient.py")
SMALL, LARGE = 40, 800
SECRET = "test-secret-key-of-at-least-32-bytes"


class Steps:
    """Counts the lines of switchgear's code run in this thread while `on()`."""

    def __init__(self) -> None:
        self.count = 0

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        if not name.startswith(SRC) or name == BROKER_FAKE:
            return None  # not the server's: its lines are not traced
        if event == "line":
            self.count += 1
        return self._trace

    @contextmanager
    def on(self) -> Iterator[None]:
        sys.settrace(self._trace)
        try:
            yield
        finally:
            sys.settrace(None)


async def steps(work: Callable[[], Awaitable[object]]) -> int:
    counter = Steps()
    with counter.on():
        await work()
    return counter.count


def fleet(account_id: int, first: int, n: int, now: float) -> list[Device]:
    """n devices: three simulated plugs in four, the fourth an adopted Gen1 Shelly."""
    out = []
    for i in range(first, first + n):
        if i % 4 == 3:
            mqtt_id = f"shellyscale-{i:06d}"
            attrs = {"protocol": "shelly-gen1", "mqtt_id": mqtt_id}
            out.append(Device(0, account_id, mqtt_id, "SHPLG-1", mqtt_id, now, ("mqtt",), attrs,
                              simulated=False))  # fmt: skip
        else:
            out.append(Device(0, account_id, f"SPSCALE{i:06d}", "SHPLG-1", f"plug {i}", now))
    return out


@pytest.fixture
async def runtimes() -> AsyncIterator[tuple[tuple[Runtime, int], tuple[Runtime, int]]]:
    """Two servers on a manual clock with a broker link: SMALL and LARGE devices of one
    account."""
    made: list[Runtime] = []
    try:
        out = []
        for n in (SMALL, LARGE):
            settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                                registrations_per_hour=1000)  # fmt: skip
            rt = await Runtime.start(settings, mqtt=MemoryBroker().transport())
            made.append(rt)
            account = await rt.auth.create_account("s@example.com", "S", "correct horse S")
            await rt.add_devices(fleet(account.id, 0, n, rt.clock.now()))
            out.append((rt, account.id))
        yield out[0], out[1]
    finally:
        for rt in made:
            await rt.stop()


Sizes = tuple[tuple[Runtime, int], tuple[Runtime, int]]


async def compare(runtimes: Sizes, one: Callable[[Runtime, int, int], Awaitable[object]]) -> None:
    """The same registration at both sizes (twice: the first may build what is kept)."""
    counts = []
    for rt, account_id in runtimes:
        await one(rt, account_id, 1)
        counts.append(await steps(lambda rt=rt, a=account_id: one(rt, a, 2)))  # type: ignore[misc]
    small, large = counts
    assert large <= small * 1.05, f"{small} lines at {SMALL} devices, {large} at {LARGE}"


async def test_adopting_a_shelly_does_not_scan_the_fleet(runtimes: Sizes) -> None:
    async def adopt(rt: Runtime, account_id: int, k: int) -> None:
        await rt.adopt(account_id, "shelly-gen1", f"shellynew-{k}", f"new {k}", None)

    await compare(runtimes, adopt)
    (_, _), (large, _) = runtimes
    assert large.mqtt is not None and large.mqtt.adopted("shellynew-2")
    assert large.mqtt.adopted("shellyscale-000003") and not large.mqtt.adopted("shellynew-3")


@pytest.mark.parametrize(
    "line",
    [
        "SPNEW{k:05d},SHPLG-1,plug {k},,,,",
        ",,shelly {k},,shelly-gen2,shellynewrow-{k},",
    ],
    ids=["simulated", "shelly"],
)
async def test_a_one_row_import_does_not_scan_the_fleet(runtimes: Sizes, line: str) -> None:
    async def one_row(rt: Runtime, account_id: int, k: int) -> None:
        text = "serial,model,name,tags,protocol,address,pin\n" + line.format(k=k) + "\n"
        plan = await onboarding.check(rt, account_id, onboarding.parse(text))
        report = await onboarding.run(rt, account_id, plan)
        assert report.imported == 1, report

    await compare(runtimes, one_row)


async def test_a_new_controller_is_found_by_its_api_id_without_a_rebuild(
    runtimes: Sizes,
) -> None:
    async def add_and_find(rt: Runtime, account_id: int, k: int) -> None:
        index(rt).lookup(rt, account_id, device_id(next(iter(rt.engine.all_devices()))))
        stored = await rt.add_device(
            Device(0, account_id, f"PC-SCALE{k:06d}-001", "power-controller-v10",
                   f"Power Controller {k}", rt.clock.now(), attrs={"country": "FI"}),
            connect_after_s=5.0,
        )  # fmt: skip
        assert index(rt).lookup(rt, account_id, device_id(stored)) == stored

    await compare(runtimes, add_and_find)


async def test_a_new_meter_is_found_by_its_devid_without_a_rebuild(runtimes: Sizes) -> None:
    async def add_and_find(rt: Runtime, account_id: int, k: int) -> None:
        meters(rt)  # the meter face's index, built before the add
        attrs = {"version": "standard", "devpass": "012345"}
        stored = await rt.add_device(
            Device(0, account_id, f"41{k:08d}", "D101", f"meter {k}", rt.clock.now(), attrs=attrs)
        )
        assert meters(rt).get(stored.serial) == stored

    await compare(runtimes, add_and_find)
