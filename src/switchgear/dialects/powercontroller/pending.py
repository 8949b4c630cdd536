"""`?async=true` requests: sent in the background, kept until the controller is reachable.

Only the latest request per device is kept (a newer one replaces it); it is written to
the store's meta table, so it survives a restart, and retried every few virtual seconds
while the device is offline. `"persist": false` requests are tried once.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from switchgear.core.model import CommandRecord, CommandState, FirmwareCommand
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

META_KEY = "powercontroller.pending"
RETRY_S = 5.0
OPS = {"command": "pc.command", "config": "pc.config", "status": "pc.status"}


def unreachable(rec: CommandRecord) -> bool:
    """The device never answered (offline or timed out), as opposed to answered with codes."""
    return rec.state is CommandState.TIMED_OUT or (
        rec.state is CommandState.FAILED and rec.result is None
    )


class Pending:
    """The kept requests of one runtime, by device id."""

    def __init__(self, rt: Runtime, stored: Any) -> None:
        self.rt = rt
        self.requests: dict[int, dict[str, Any]] = {}
        if isinstance(stored, dict):
            self.requests = {int(k): v for k, v in stored.items() if isinstance(v, dict)}
        self._tick: Any = None
        self._inflight: set[int] = set()
        self._seq = itertools.count()
        self._arm()

    def submit(self, account_id: int, device_id: int, op: str, params: dict[str, Any],
               persist: bool) -> None:  # fmt: skip
        """Send in the background; a newer persistent request replaces the kept one."""
        request = {"account_id": account_id, "op": op, "params": params,
                   "at": [self.rt.clock.now(), next(self._seq)]}  # fmt: skip
        if persist and self.requests.pop(device_id, None) is not None:
            self._save()
        self.rt.spawn(self._send(device_id, request, persist), name=f"pc-async-{device_id}")

    async def _send(self, device_id: int, request: dict[str, Any], persist: bool) -> None:
        self._inflight.add(device_id)
        command = FirmwareCommand(OPS[request["op"]], request["params"])
        try:
            rec = await self.rt.engine.command(request["account_id"], device_id, command)
        except Exception:  # the device was removed, or the request became invalid
            log.exception("async power controller request dropped")
            rec = None
        finally:
            self._inflight.discard(device_id)
        kept = self.requests.get(device_id)
        if rec is not None and unreachable(rec) and persist:
            if kept is None or kept["at"] < request["at"]:  # the newest one is kept
                self.requests[device_id] = request
                self._save()
            self._arm()
        elif kept is request:
            del self.requests[device_id]
            self._save()

    def _save(self) -> None:
        self.rt.journal.put_meta(META_KEY, {str(k): v for k, v in self.requests.items()})

    def _arm(self) -> None:
        if self.requests and (self._tick is None or not self._tick.active):
            self._tick = self.rt.scheduler.call_later(RETRY_S, self._retry)

    def _retry(self, _: object = None) -> None:
        self._tick = None
        for device_id, request in list(self.requests.items()):
            if device_id not in self._inflight and self.rt.engine.shadow(device_id).online:
                self.rt.spawn(self._send(device_id, request, True), name=f"pc-retry-{device_id}")
        self._arm()


def pending(rt: Runtime) -> Pending:
    found = rt.extensions.get(META_KEY)
    if not isinstance(found, Pending):
        found = rt.extensions[META_KEY] = Pending(rt, None)
    return found


async def start(rt: Runtime) -> None:
    """Load the kept requests of the last run and start retrying them."""
    rt.extensions[META_KEY] = Pending(rt, await rt.store.meta(META_KEY))
