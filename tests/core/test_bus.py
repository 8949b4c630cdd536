"""The in-process bus delivers by topic prefix and never blocks the publisher."""

from __future__ import annotations

import asyncio

from switchgear.core.bus import MemoryBus


async def test_subscribers_get_messages_of_their_prefix_only() -> None:
    bus = MemoryBus()
    got: list[tuple[str, object]] = []

    async def listen() -> None:
        async for topic, msg in bus.subscribe("device/1/"):
            got.append((topic, msg))
            if len(got) == 2:
                return

    assert not bus.wanted("device/1/5")
    task = asyncio.create_task(listen())
    await asyncio.sleep(0)  # the listener subscribes on its first step
    assert bus.subscribers == 1
    assert bus.wanted("device/1/5") and not bus.wanted("device/2/9")
    bus.publish("device/2/9", {"n": 0})
    bus.publish("device/1/5", {"n": 1})
    bus.publish("device/1/6", {"n": 2})
    await asyncio.wait_for(task, 1)
    assert got == [("device/1/5", {"n": 1}), ("device/1/6", {"n": 2})]
    assert bus.subscribers == 0 and not bus.wanted("device/1/5")


async def test_a_slow_subscriber_loses_the_oldest_not_the_newest() -> None:
    bus = MemoryBus(queue_size=3)
    it = bus.subscribe("")
    first = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0)
    for i in range(10):
        bus.publish("t", i)
    assert (await first)[1] in (0, 7)
    rest = [(await anext(it))[1] for _ in range(2)]
    assert rest[-1] == 9
    await it.aclose()
