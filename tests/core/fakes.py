"""A store fake that records each committed batch (for group-commit tests)."""

from __future__ import annotations

import asyncio

from switchgear.core.ports import Batch


class RecordingStore:
    """Implements only `commit`; each call takes `delay` seconds."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[Batch] = []
        self.delay = delay
        self.fail = fail

    async def commit(self, batch: Batch) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("disk full")
        self.batches.append(batch)
