"""A store fake that records each committed batch (for group-commit tests)."""

from __future__ import annotations

import asyncio

from switchgear.core.ports import Batch


class RecordingStore:
    """Implements only `commit`; with a `gate`, each commit waits until the gate is open
    (a slow disk the test controls), and `started` counts the commits begun."""

    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.batches: list[Batch] = []
        self.gate = gate
        self.fail = fail
        self.started = 0

    async def commit(self, batch: Batch) -> None:
        self.started += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        self.batches.append(batch)
