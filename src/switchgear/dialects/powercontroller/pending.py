"""`?async=true` requests: sent in the background, kept until the controller is reachable.

Only the latest request per device is kept (a newer one replaces it); it is written to
the store's meta table, so it survives a restart, and retried every few virtual seconds
while the device is offline. `"persist": false` requests are tried once.

Each kept request is its device's row of the meta table, so with several API workers on
one database the newest request of any worker replaces an older one of any other. A
worker knows the requests it kept and every row present when it started; it sends one
only after deleting the row holding exactly that request (`Store.take_meta` with the
value, atomic), and forgets it otherwise: another worker took it, or a newer request
replaced it. So a kept request runs at most once and never after a newer one was kept; a
worker killed between taking one and the controller's answer loses that one.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

from switchgear.core.model import FirmwareCommand, Json
from switchgear.keptrows import split_legacy
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

META_KEY = "powercontroller.pending"  # the runtime's extension; the one row all were in, before
PREFIX = "powercontroller.pending/"  # + device id: the row of its kept request
RETRY_S = 5.0
OPS = {"command": "pc.command", "config": "pc.config", "status": "pc.status"}


def row_key(device_id: int) -> str:
    return f"{PREFIX}{device_id}"


class Pending:
    """The kept requests this worker knows of, by device id."""

    def __init__(self, rt: Runtime, stored: dict[str, Json]) -> None:
        self.rt = rt
        self.requests: dict[int, dict[str, Any]] = {
            int(k.removeprefix(PREFIX)): dict(v)
            for k, v in stored.items()
            if isinstance(v, dict) and k.removeprefix(PREFIX).isdigit()
        }
        self._tick: Any = None
        self._inflight: set[int] = set()
        self._seq = itertools.count()
        self._arm()

    def submit(self, account_id: int, device_id: int, op: str, params: dict[str, Any],
               persist: bool) -> None:  # fmt: skip
        """Send in the background; a newer persistent request replaces the kept one."""
        request = {"account_id": account_id, "op": op, "params": params,
                   "at": [self.rt.clock.now(), next(self._seq)]}  # fmt: skip
        if persist:
            self.requests.pop(device_id, None)
        self.rt.spawn(self._submit(device_id, request, persist), name=f"pc-async-{device_id}")

    async def _submit(self, device_id: int, request: dict[str, Any], persist: bool) -> None:
        """Send a new request; a persistent one first drops the kept one, any worker's."""
        if persist:
            await self.rt.store.take_meta(row_key(device_id))
        await self._send(device_id, request, persist)

    async def _resend(self, device_id: int, request: dict[str, Any]) -> None:
        """Send a kept request if this worker takes its row; else forget it."""
        if await self.rt.store.take_meta(row_key(device_id), request):
            await self._send(device_id, request, True)
        elif self.requests.get(device_id) is request:
            del self.requests[device_id]

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
        if rec is not None and rec.unreachable() and persist:
            newest = kept is None or kept["at"] <= request["at"]  # (equal: this one, retried)
            if newest and await self._keep(device_id, request):
                self.requests[device_id] = request
            elif self.requests.get(device_id) is request:
                del self.requests[device_id]
            self._arm()
        elif kept is request:
            del self.requests[device_id]

    async def _keep(self, device_id: int, request: dict[str, Any]) -> bool:
        """Store the device's kept request unless a newer one is: whether it is stored."""
        key = row_key(device_id)
        while (stored := await self.rt.store.claim(key, request)) != request:
            if isinstance(stored, dict) and stored.get("at", []) > request["at"]:
                return False
            if stored is not None:  # an older one: replaced, unless another worker took it
                await self.rt.store.take_meta(key, stored)
        return True

    def _arm(self) -> None:
        if self.requests and (self._tick is None or not self._tick.active):
            self._tick = self.rt.scheduler.call_later(RETRY_S, self._retry)

    def _retry(self, _: object = None) -> None:
        self._tick = None
        for device_id, request in list(self.requests.items()):
            if device_id not in self._inflight and self.rt.engine.shadow(device_id).online:
                self.rt.spawn(self._resend(device_id, request), name=f"pc-retry-{device_id}")
        self._arm()


def pending(rt: Runtime) -> Pending:
    found = rt.extensions.get(META_KEY)
    if not isinstance(found, Pending):
        found = rt.extensions[META_KEY] = Pending(rt, {})
    return found


async def start(rt: Runtime) -> None:
    """Load the kept requests (every worker's, see the module's doc) and start retrying them."""
    await split_legacy(rt, META_KEY, _legacy_rows)  # one row for all, as a version before
    rt.extensions[META_KEY] = Pending(rt, await rt.store.metas(PREFIX))


def _legacy_rows(legacy: Json) -> Iterator[tuple[str, Json]]:
    """The rows of what a version before kept in one: {device id: request}."""
    for device_id, request in legacy.items() if isinstance(legacy, dict) else ():
        if isinstance(request, dict):
            yield row_key(int(device_id)), request
