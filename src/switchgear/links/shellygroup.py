"""Several API workers and one real Shelly device: who writes each record, who fires each timer.

Every worker takes every message of an adopted device on its own subscription and derives
its shadow and live events from it. The history is written once:
- a change a command made is recorded by the worker that ran the command; it tells the
  others first (`shelly.intent`, with the record's id), so they give the device's report
  of it the command's reason and id and record nothing;
- what the device reports by itself is recorded by the worker the broker deals the
  message's copy to among the deployment's MQTT 5 shared subscriptions (as `FleetLink`).
A switch the server runs for the device (a delayed switch, a Gen1 flip-back) is told to
every worker (`shelly.pending`) and armed on each; when it falls due, the store's atomic
`claim` keyed by device and due time lets one of them fire it, so it fires once while any
worker is alive (a kill -9 of the worker that set it loses nothing).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Awaitable, Callable

from switchgear.core.clock import Clock, SystemClock
from switchgear.core.model import DeviceEvent, Json
from switchgear.core.ports import Peers

Recorder = Callable[[DeviceEvent, str], None]
Claim = Callable[[str, Json], Awaitable[Json]]
Key = tuple[str, bytes]

KEEP_S = 30.0  # an intent whose report did not come this long is dropped
TIMER_CLAIM = "shelly-timer/"  # + device/due/on: the meta row of a timer's run (its claim)
RECORD_CLAIM = "shelly-record/"  # + record id: a record every worker makes, one writes
# a timer's claim is kept this long (wall clock) after it was taken: every worker that armed
# the timer asks at its due time, and one that comes to it later (the device was offline)
# finds it cleared by the device's report of the switch before it asks
CLAIM_KEEP_S = 3600.0


def message_record_id(topic: str, payload: bytes, index: int, ev: DeviceEvent) -> str:
    """The id every worker gives the `index`-th record derived from one device message:
    what the record says, to 10 s (a device repeats a payload, e.g. an unchanged power)."""
    what = json.dumps([ev.kind.value, ev.reason, ev.data, ev.channel], sort_keys=True)
    seed = f"{topic}\0{index}\0{int(ev.ts // 10)}\0{what}\0".encode() + payload
    digest = hashlib.blake2b(seed, digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


class Namer:
    """Names the records derived from device messages as every worker does: the same
    record again within its 10 s (the same power after a switch and back) counts on."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float]] = {}  # id -> times named, when first

    def name(self, topic: str, payload: bytes, index: int, ev: DeviceEvent) -> str:
        base = message_record_id(topic, payload, index, ev)
        n, first = self._seen.get(base, (0, ev.ts))
        self._seen[base] = (n + 1, first)
        if len(self._seen) > 1024:  # past their 10 s: forget
            self._seen = {k: v for k, v in self._seen.items() if v[1] > ev.ts - 20.0}
        return base if n == 0 else f"{base}-{n}"


class Election:
    """Pairs a message's plain copy (the records this worker derived from it) with its
    shared copy (this worker was dealt it, so it writes them), whichever comes first.

    The broker queues both copies of one message to a worker together, one after the
    other, so a copy pairs with the last unpaired copy of its topic: a device repeats
    the same payload (another worker's state request, an unchanged power), and the
    oldest copy of a payload may be one whose shared half went to another worker.
    One entry per topic at most: nothing grows with the messages."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._derived: dict[str, tuple[bytes, list[tuple[DeviceEvent, str]]]] = {}
        self._elected: dict[str, bytes] = {}

    def plain(self, key: Key, records: list[tuple[DeviceEvent, str]]) -> None:
        """The records derived from one message's plain copy."""
        topic, payload = key
        if self._elected.get(topic) == payload:
            del self._elected[topic]
            self._write(records)
        else:
            self._derived[topic] = (payload, records)

    def shared(self, key: Key) -> None:
        """This worker was dealt a message's shared copy."""
        topic, payload = key
        last = self._derived.get(topic)
        if last is not None and last[0] == payload:
            del self._derived[topic]
            self._write(last[1])
        else:
            self._elected[topic] = payload

    def pending(self) -> int:
        """Copies waiting for their other half (one per topic at most)."""
        return len(self._derived) + len(self._elected)

    def _write(self, records: list[tuple[DeviceEvent, str]]) -> None:
        for ev, rid in records:
            self.recorder(ev, rid)


class Group:
    """What an MqttLink needs to work beside other workers."""

    def __init__(
        self, name: str, recorder: Recorder, peers: Peers, claim: Claim, wall: Clock | None = None
    ) -> None:
        self.name = name  # the shared subscriptions' group
        self.election = Election(recorder)
        self.namer = Namer()
        self.recorder = recorder
        self.peers = peers
        self.claim = claim
        self.worker = ""  # this worker's id, stored by the claims it takes
        self.wall = wall or SystemClock()  # when a claim was taken (its row goes after)

    async def fire(self, device_id: int, due: float, on: bool) -> bool:
        """Whether this worker runs the switch due then (the first to ask does)."""
        key = f"{TIMER_CLAIM}{device_id}/{due!r}/{int(on)}"
        mark = f"{self.worker}/{self.wall.now()!r}"
        return bool(await self.claim(key, mark) == mark)

    async def record_once(self, event: DeviceEvent, rid: str) -> None:
        """Write a record every worker makes by itself (under one id) if this worker is
        the first to claim it: what no shared copy elects a writer for."""
        mark = f"{self.worker}/{self.wall.now()!r}"
        if await self.claim(f"{RECORD_CLAIM}{rid}", mark) == mark:
            self.recorder(event, rid)


def claim_ends(key: str, value: Json) -> float:
    """When a timer's (or a record's) claim row may go (wall clock): CLAIM_KEEP_S after it
    was taken, as its mark (`worker/wall time`) says; a row without that mark at once."""
    try:
        return float(str(value).rsplit("/", 1)[1]) + CLAIM_KEEP_S
    except (IndexError, ValueError):
        return -math.inf
