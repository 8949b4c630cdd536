"""Commands for a gateway off the network: kept on its command stream until it polls again.

A Push3 gateway polls a push stream for its commands, so a command sent while it is away
waits there and runs when it comes back. Waiting commands are kept in the store's meta
table (a restart keeps them), in order, at most WAIT_MAX per gateway, each for at most
WAIT_S seconds; a command dropped for either reason gets a `success: false` answer on its
response channel.
"""

from __future__ import annotations

import logging
from typing import Any

from switchgear.core.model import CommandRecord, CommandState, FirmwareCommand, Json
from switchgear.dialects.push3.channels import hub
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

META_KEY = "push3.outbox"
POLL_S = 1.0  # how soon a returning gateway takes what waits for it
WAIT_S = 3600.0  # how long a command waits for its gateway
WAIT_MAX = 100  # commands waiting per gateway (the oldest beyond are dropped)


def unreachable(rec: CommandRecord) -> bool:
    """The gateway never took the command (off the network, or no answer in time)."""
    return rec.state is CommandState.TIMED_OUT or (
        rec.state is CommandState.FAILED and rec.result is None
    )


class Outbox:
    """The waiting commands of one runtime, by gateway device id."""

    def __init__(self, rt: Runtime, stored: Any) -> None:
        self.rt = rt
        self.waiting: dict[int, list[dict[str, Any]]] = {}
        if isinstance(stored, dict):
            self.waiting = {int(k): list(v) for k, v in stored.items() if isinstance(v, list)}
        self._tick: Any = None
        self._busy: set[int] = set()
        self._arm()

    def put(self, account_id: int, gateway_id: int, serial: str, params: dict[str, Json]) -> None:
        """Keep a command until its gateway polls again."""
        queue = self.waiting.setdefault(gateway_id, [])
        queue.append({"account_id": account_id, "serial": serial, "params": params,
                      "since": self.rt.clock.now()})  # fmt: skip
        while len(queue) > WAIT_MAX:
            self._fail(queue.pop(0), f"more than {WAIT_MAX} commands waited for it")
        self._save()
        self._arm()

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

    def _save(self) -> None:
        self.rt.journal.put_meta(META_KEY, {str(k): v for k, v in self.waiting.items() if v})

    def _arm(self) -> None:
        if self.waiting and (self._tick is None or not self._tick.active):
            self._tick = self.rt.scheduler.call_later(POLL_S, self._poll)

    def _poll(self, _: object = None) -> None:
        self._tick = None
        now, changed = self.rt.clock.now(), False
        for gateway_id, queue in list(self.waiting.items()):
            while queue and now - queue[0]["since"] > WAIT_S:
                self._fail(queue.pop(0), f"it did not come back within {WAIT_S:.0f} s")
                changed = True
            if not queue:
                del self.waiting[gateway_id]
            elif gateway_id not in self._busy and self.rt.engine.shadow(gateway_id).online:
                self._busy.add(gateway_id)
                self.rt.spawn(self._hand_over(gateway_id), name=f"push3-outbox-{gateway_id}")
        if changed:
            self._save()
        self._arm()

    async def _hand_over(self, gateway_id: int) -> None:
        """The gateway is back: it takes what waits for it, oldest first."""
        try:
            queue = self.waiting.get(gateway_id, [])
            while queue:
                entry = queue[0]
                command = FirmwareCommand("push3.command", entry["params"])
                try:
                    rec = await self.rt.engine.command(entry["account_id"], gateway_id, command)
                except Exception:  # the gateway was removed, or the command became invalid
                    log.exception("push3 command for gateway %s dropped", entry["serial"])
                    rec = None
                if rec is not None and unreachable(rec):
                    break  # gone again: the rest keeps waiting
                queue.pop(0)
                if rec is None or rec.state is not CommandState.DONE:
                    why = rec.error if rec is not None and rec.error else "refused the command"
                    self._fail(entry, f"gateway {entry['serial']} {why}", offline=False)
                self._save()
        finally:
            self._busy.discard(gateway_id)


def outbox(rt: Runtime) -> Outbox:
    found = rt.extensions.get(META_KEY)
    if not isinstance(found, Outbox):
        found = rt.extensions[META_KEY] = Outbox(rt, None)
    return found


async def start(rt: Runtime) -> None:
    """Load the commands that waited at the last stop."""
    rt.extensions[META_KEY] = Outbox(rt, await rt.store.meta(META_KEY))
