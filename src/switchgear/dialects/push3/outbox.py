"""Commands for a gateway off the network: kept on its command stream until it polls again.

A Push3 gateway polls a push stream for its commands, so a command sent while it is away
waits there and runs when it comes back. Each waiting command is its own row of the
store's meta table (a restart keeps it), at most WAIT_MAX per gateway, each for at most
WAIT_S seconds; a command dropped for either reason gets a `success: false` answer on its
response channel.

With several API workers on one database, a worker knows the commands it was sent and
every one that waited when it started (those of a worker that died, but also the live
workers' own): two workers may hold one command. Whoever deletes its row first
(`Store.take_meta`, atomic) runs it, or answers its drop; the others forget it. So a
command runs at most once; a worker killed between taking one and its gateway's answer
loses that one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from switchgear.core.model import CommandState, FirmwareCommand, Json
from switchgear.dialects.push3.channels import hub
from switchgear.keptrows import split_legacy
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

META_KEY = "push3.outbox"  # the runtime's extension; the one row all waited in, before
PREFIX = "push3.outbox/"  # + gateway id/msg_id: the row of one waiting command
POLL_S = 1.0  # how soon a returning gateway takes what waits for it
WAIT_S = 3600.0  # how long a command waits for its gateway
WAIT_MAX = 100  # commands waiting per gateway (the oldest beyond are dropped)


def row_key(gateway_id: int, entry: dict[str, Any]) -> str:
    return f"{PREFIX}{gateway_id}/{entry['params']['msg_id']}"


class Outbox:
    """The waiting commands this worker knows of, by gateway device id, oldest first."""

    def __init__(self, rt: Runtime, stored: dict[str, Json]) -> None:
        self.rt = rt
        self.waiting: dict[int, list[dict[str, Any]]] = {}
        rows = [(k, v) for k, v in stored.items() if isinstance(v, dict)]
        for key, entry in sorted(rows, key=lambda row: float(row[1].get("since", 0.0))):
            gateway_id = key.removeprefix(PREFIX).partition("/")[0]
            if gateway_id.isdigit():
                self.waiting.setdefault(int(gateway_id), []).append(dict(entry))
        self._tick: Any = None
        self._busy: set[int] = set()
        self._arm()

    async def put(
        self, account_id: int, gateway_id: int, serial: str, params: dict[str, Json]
    ) -> None:
        """Keep a command until its gateway polls again: durable when this returns."""
        entry = {"account_id": account_id, "serial": serial, "params": params,
                 "since": self.rt.clock.now()}  # fmt: skip
        self.rt.journal.put_meta(row_key(gateway_id, entry), entry)
        await self.rt.journal.flush()  # a command held has its row: whoever takes it finds it
        queue = self.waiting.setdefault(gateway_id, [])
        queue.append(entry)
        while len(queue) > WAIT_MAX:
            oldest = queue.pop(0)
            if await self._take(gateway_id, oldest):
                self._fail(oldest, f"more than {WAIT_MAX} commands waited for it")
        self._arm()

    async def _take(self, gateway_id: int, entry: dict[str, Any]) -> bool:
        """Whether this worker takes the command (to run it or drop it): its row was there."""
        return await self.rt.store.take_meta(row_key(gateway_id, entry))

    def _fail(self, entry: dict[str, Any], why: str, offline: bool = True) -> None:
        p, gw = entry["params"], entry["serial"]
        error = f"gateway {gw} is off the network: {why}; command dropped" if offline else why
        message: dict[str, Json] = {
            "msg_id": p["msg_id"], "timestamp": self.rt.clock.now(), "success": False,
            "error": error, "data": None,
        }  # fmt: skip
        channels = hub(self.rt)
        channels.deliver(str(p["channel"]), message)
        if self.rt.cluster is not None:  # the other workers' readers of the channel too
            self.rt.spawn(channels.tell_answer(str(p["channel"]), message), "push3-answer")

    def _arm(self) -> None:
        if self.waiting and (self._tick is None or not self._tick.active):
            self._tick = self.rt.scheduler.call_later(POLL_S, self._poll)

    def _poll(self, _: object = None) -> None:
        self._tick = None
        now = self.rt.clock.now()
        for gateway_id, queue in list(self.waiting.items()):
            if not queue:
                del self.waiting[gateway_id]
            elif gateway_id not in self._busy and (
                self.rt.engine.shadow(gateway_id).online
                or any(now - entry["since"] > WAIT_S for entry in queue)
            ):
                self._busy.add(gateway_id)
                self.rt.spawn(self._serve(gateway_id), name=f"push3-outbox-{gateway_id}")
        self._arm()

    async def _serve(self, gateway_id: int) -> None:
        """Drop what waited too long; if the gateway is back, it takes the rest, oldest first."""
        try:
            queue = self.waiting.get(gateway_id, [])
            now = self.rt.clock.now()
            for entry in [e for e in queue if now - e["since"] > WAIT_S]:
                if entry in queue:  # (not dropped by a `put` meanwhile)
                    queue.remove(entry)
                if await self._take(gateway_id, entry):
                    self._fail(entry, f"it did not come back within {WAIT_S:.0f} s")
            while queue and self.rt.engine.shadow(gateway_id).online:
                entry = queue.pop(0)
                taken = await self._take(gateway_id, entry)  # False: another worker took it
                if taken and not await self._hand_over(gateway_id, entry):
                    queue.insert(0, entry)
                    break
            if not queue:
                self.waiting.pop(gateway_id, None)
        finally:
            self._busy.discard(gateway_id)

    async def _hand_over(self, gateway_id: int, entry: dict[str, Any]) -> bool:
        """Run a command taken; False if the gateway is gone again (its row is back)."""
        command = FirmwareCommand("push3.command", entry["params"])
        try:
            rec = await self.rt.engine.command(entry["account_id"], gateway_id, command)
        except Exception:  # the gateway was removed, or the command became invalid
            log.exception("push3 command for gateway %s dropped", entry["serial"])
            rec = None
        if rec is not None and rec.unreachable():  # gone again: it waits as before
            self.rt.journal.put_meta(row_key(gateway_id, entry), entry)
            await self.rt.journal.flush()
            return False
        if rec is None or rec.state is not CommandState.DONE:
            why = rec.error if rec is not None and rec.error else "refused the command"
            self._fail(entry, f"gateway {entry['serial']} {why}", offline=False)
        return True


def outbox(rt: Runtime) -> Outbox:
    found = rt.extensions.get(META_KEY)
    if not isinstance(found, Outbox):
        found = rt.extensions[META_KEY] = Outbox(rt, {})
    return found


async def start(rt: Runtime) -> None:
    """Load the commands waiting at the last stop: every worker's (see the module's doc)."""
    await split_legacy(rt, META_KEY, _legacy_rows)  # one row for all, as a version before
    rt.extensions[META_KEY] = Outbox(rt, await rt.store.metas(PREFIX))


def _legacy_rows(legacy: Json) -> Iterator[tuple[str, Json]]:
    """The rows of what a version before kept in one: {gateway id: [entry, ...]}."""
    for gateway_id, entries in legacy.items() if isinstance(legacy, dict) else ():
        for entry in entries if isinstance(entries, list) else []:
            yield row_key(int(gateway_id), entry), entry
