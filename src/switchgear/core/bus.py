"""In-process event fan-out: the default Bus (the MQTT bus is its scale-out twin), and
the default Peers of a process that has none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from switchgear.core.model import Json
from switchgear.core.ports import PeerHandler


class MemoryBus:
    """Publishes to every subscriber whose prefix matches; slow subscribers lose the oldest."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: list[tuple[str, asyncio.Queue[tuple[str, Json]]]] = []
        self._size = queue_size

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def wanted(self, topic: str) -> bool:
        if not self._subs:  # the usual case: no generator to build
            return False
        return any(topic.startswith(prefix) for prefix, _ in self._subs)

    def publish(self, topic: str, message: Json) -> None:
        for prefix, q in self._subs:
            if topic.startswith(prefix):
                if q.full():
                    q.get_nowait()
                q.put_nowait((topic, message))

    async def subscribe(self, prefix: str = "") -> AsyncIterator[tuple[str, Json]]:
        q: asyncio.Queue[tuple[str, Json]] = asyncio.Queue(self._size)
        entry = (prefix, q)
        self._subs.append(entry)
        try:
            while True:
                yield await q.get()
        finally:
            self._subs.remove(entry)


class NoPeers:
    """A process alone on its database: nothing to tell (the embedded default)."""

    def on(self, kind: str, handler: PeerHandler) -> None:
        pass

    async def tell(self, kind: str, body: Json) -> None:
        pass
