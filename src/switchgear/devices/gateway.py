"""The Push3 gateway twin: takes commands from its stream, runs them on its meters, answers.

Each command is executed on the target meter after a varying delay (the gateway polls its
stream and talks to the meter over RS-485), so answers to concurrent commands arrive out
of order. The answer is a `function` status (reason `push3`) published on the command's
response channel. Queued commands live in NVRAM: a reboot runs them late, never loses
them; while the gateway is off the network they wait.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from switchgear.core.model import CommandResult, FirmwareCommand, Json, StatusKind
from switchgear.core.scheduler import Timer
from switchgear.devices.twin import Twin
from switchgear.errors import InvalidCommand, SwitchgearError

log = logging.getLogger(__name__)
MeterLookup = Callable[[str, str], Twin | None]  # (gateway serial, meter address) -> twin
DEFAULT_MAX_DELAY_S = 1.5


class GatewayTwin(Twin):
    """No relay and no meter of its own; a queue of commands for its meters."""

    def setup(self) -> None:
        self.queue: dict[str, dict[str, Json]] = {}
        self._timers: dict[str, Timer] = {}
        self._meters: MeterLookup = lambda gateway, address: None
        self.max_delay_s = DEFAULT_MAX_DELAY_S

    def attach(self, meters: MeterLookup, max_delay_s: float) -> None:
        """Wire the gateway to the meters on its bus (the fleet knows them)."""
        self._meters = meters
        self.max_delay_s = max_delay_s

    def firmware(self, cmd: FirmwareCommand) -> CommandResult:
        if cmd.name != "push3.command":
            raise InvalidCommand(f"unknown gateway command {cmd.name!r}", field="command")
        p = dict(cmd.params)
        msg_id = p.get("msg_id")
        if not isinstance(msg_id, str) or not msg_id:
            raise InvalidCommand("each command needs a msg_id", field="msg_id")
        if msg_id in self.queue:  # the cloud sent it again (it missed the first answer)
            return CommandResult(ok=True, data={"timestamp": self.queue[msg_id]["timestamp"]})
        now = self.clock.now()
        spread = random.Random(msg_id).random()
        due = now + self.max_delay_s * (0.05 + 0.95 * spread) if self.max_delay_s > 0 else now
        self.queue[msg_id] = {**p, "timestamp": now, "due": due}
        self._arm(msg_id)
        self.save()
        return CommandResult(ok=True, data={"timestamp": now})

    def _arm(self, msg_id: str) -> None:
        old = self._timers.pop(msg_id, None)
        if old is not None:
            old.cancel()
        due = float(self.queue[msg_id]["due"])
        self._timers[msg_id] = self.scheduler.call_at(due, self._execute, msg_id)

    def _execute(self, msg_id: str) -> None:
        self._timers.pop(msg_id, None)
        if not self.online:
            return  # it runs once the gateway is back on the network
        msg = self.queue.pop(msg_id, None)
        if msg is None:
            return
        success, error, data = self.run(msg)
        answer: dict[str, Json] = {
            "msg_id": msg_id,
            "timestamp": msg["timestamp"],
            "success": success,
            "error": error,
            "data": data,
            "response_channel_id": msg.get("channel"),
        }
        self.emit(StatusKind.FUNCTION, "push3", answer, topic=f"push3/{msg.get('channel')}")
        self.save()

    def run(self, msg: dict[str, Json]) -> tuple[bool, str | None, Json]:
        """Execute one command on its target: (success, error, data)."""
        command, target = str(msg.get("command")), msg.get("target")
        if target == "gateway":
            return False, f"unsupported gateway command {command}", None
        address = str(msg.get("target_id"))
        meter = self._meters(self.device.serial, address)
        if meter is None or not meter.online:  # nothing answers on the RS-485 bus
            return False, f"meter {address} did not respond", None
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        try:
            result = meter.handle(FirmwareCommand(f"ekm.{command}", params or {}))
        except SwitchgearError as err:
            return False, err.message, None
        except Exception:  # a fault in the meter must not swallow the answer
            log.exception("meter %s failed on %s", address, command)
            return False, f"meter {address} failed to run {command}", None
        return True, None, result.data.get("data")

    # --- lifecycle ----------------------------------------------------------------------

    def boot(self) -> None:
        super().boot()
        # no relay to report a reboot with: say so, or the cloud would think it still away
        self.emit(StatusKind.CONNECTION, "online", {"online": True})
        for msg_id in list(self.queue):
            self._arm(msg_id)  # overdue ones run on the next tick

    def shutdown(self) -> None:
        super().shutdown()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def set_online(self, online: bool) -> None:
        super().set_online(online)
        if online:
            for msg_id in list(self.queue):
                if msg_id not in self._timers:
                    self._arm(msg_id)

    def nvram(self) -> dict[str, Json]:
        return {**super().nvram(), "queue": self.queue}

    def restore(self, blob: dict[str, Any]) -> None:
        super().restore(blob)
        queue = blob.get("queue")
        if isinstance(queue, dict):
            self.queue = {str(k): dict(v) for k, v in queue.items() if isinstance(v, dict)}
