"""Response channels: unguessable ids, owned by one account, each with a bounded backlog.

Gateway answers reach the hub through the bus (topic `push3/<channel>`); every open
`/sub` stream and `/ws` socket of a channel gets each message. A reader first gets a
replay: `.b<N>` the last N answers, a plain id the answers of the last RECENT_S seconds
(so a reader that connects after its command was answered still sees the answer). Idle
streams get a keep-alive. The registry of channel ids is kept in the store's meta table
(a restart keeps them valid); backlogs live in memory. With several API workers, a new
channel is told to the others before its id is answered (`tell_new`), and every worker
hears the gateways' answers itself, so a channel reads the same on each.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from switchgear.core.model import Json
from switchgear.errors import InvalidInput, NotFound
from switchgear.runtime import Runtime

META_KEY = "push3.channels"
BACKLOG = 100  # messages kept per channel (the most a `.b<N>` replay returns)
CHANNELS_PER_ACCOUNT = 100  # least recently used idle channels beyond this are dropped
LISTENER_QUEUE = 1000
RECENT_S = 60.0  # a reader without `.b<N>` first gets the answers of this many seconds
NAMED = re.compile(r"^[A-Za-z0-9_-]{16,128}$")  # a channel id a client names itself
ISSUED = "response_"  # the prefix of the ids switchgear issues; not for clients' own names
TOPIC = "push3/"


class ChannelNotFound(NotFound):
    """Channel not found."""


@dataclass
class Channel:
    id: str
    account_id: int
    client: str
    named: bool = False  # named by the client (response_channel_id), not issued
    backlog: deque[dict[str, Json]] = field(default_factory=lambda: deque(maxlen=BACKLOG))
    arrived: deque[float] = field(default_factory=lambda: deque(maxlen=BACKLOG))  # backlog's
    listeners: set[asyncio.Queue[dict[str, Json]]] = field(default_factory=set)


class Hub:
    """Every channel of this server process."""

    def __init__(self, rt: Runtime, stored: Any) -> None:
        self.rt = rt
        self.channels: OrderedDict[str, Channel] = OrderedDict()
        self._by_client: dict[tuple[int, str], str] = {}
        self._untold: list[Channel] = []  # made here, not yet told to the other workers
        rt.peers.on("push3.channel", self._peer_channel)
        rt.peers.on("push3.answer", self._peer_answer)
        if isinstance(stored, dict):
            for cid, (account_id, client, *named) in stored.items():
                self._add(Channel(cid, int(account_id), str(client), bool(named and named[0])))

    def _add(self, ch: Channel) -> None:
        self.channels[ch.id] = ch
        if not ch.named:
            self._by_client[(ch.account_id, ch.client)] = ch.id

    def channel_for(self, account_id: int, client: str) -> Channel:
        """The account's channel for this client name, made on first use."""
        found = self._by_client.get((account_id, client))
        if found is not None and found in self.channels:
            self.channels.move_to_end(found)
            return self.channels[found]
        ch = Channel(ISSUED + secrets.token_urlsafe(24), account_id, client)
        self._add(ch)
        self._untold.append(ch)
        self._evict(account_id)
        self._save()
        return ch

    def named(self, account_id: int, channel_id: str) -> Channel:
        """The channel a client names itself: the account's own, or a new one.

        An issued id (`response_...`) of another account is as unknown as a missing one.
        """
        found = self.channels.get(channel_id)
        if found is not None and found.account_id == account_id:
            self.channels.move_to_end(channel_id)
            return found
        if channel_id.startswith(ISSUED):
            raise ChannelNotFound("unknown response_channel_id")
        if found is not None:
            raise InvalidInput("response_channel_id is taken: name another",
                               field="response_channel_id")  # fmt: skip
        if not NAMED.match(channel_id):
            raise InvalidInput(
                "response_channel_id must be 16-128 letters, digits, '_' or '-', not starting "
                f"with {ISSUED!r} (reading a channel needs only its id: make it hard to guess)",
                field="response_channel_id",
            )
        ch = Channel(channel_id, account_id, "", named=True)
        self._add(ch)
        self._untold.append(ch)
        self._evict(account_id)
        self._save()
        return ch

    async def tell_new(self) -> None:
        """Tell the other workers of the channels made here since the last call."""
        while self._untold:
            ch = self._untold.pop(0)
            body = {"id": ch.id, "account_id": ch.account_id, "client": ch.client,
                    "named": ch.named}  # fmt: skip
            await self.rt.peers.tell("push3.channel", body)

    async def _peer_channel(self, body: Json) -> None:
        """A channel another worker made: readable here too."""
        if isinstance(body, dict) and str(body.get("id")) not in self.channels:
            ch = Channel(str(body["id"]), int(body["account_id"]), str(body.get("client", "")),
                         bool(body.get("named")))  # fmt: skip
            self._add(ch)
            self._evict(ch.account_id)

    async def _peer_answer(self, body: Json) -> None:
        """An answer another worker made itself (a refusal, not the gateway's)."""
        if isinstance(body, dict) and isinstance(body.get("message"), dict):
            self.deliver(str(body.get("channel")), body["message"])

    async def tell_answer(self, channel_id: str, message: dict[str, Json]) -> None:
        """An answer this worker made (not a gateway's), delivered here: to the others."""
        if self.rt.cluster is not None:
            await self.rt.peers.tell("push3.answer", {"channel": channel_id, "message": message})

    def _evict(self, account_id: int) -> None:
        mine = [c for c in self.channels.values() if c.account_id == account_id]
        for ch in mine[: max(0, len(mine) - CHANNELS_PER_ACCOUNT)]:
            if not ch.listeners:
                del self.channels[ch.id]
                if self._by_client.get((ch.account_id, ch.client)) == ch.id:
                    del self._by_client[(ch.account_id, ch.client)]

    def _save(self) -> None:
        registry = {c.id: [c.account_id, c.client, c.named] for c in self.channels.values()}
        self.rt.journal.put_meta(META_KEY, registry)

    def get(self, channel_id: str, account_id: int | None = None) -> Channel:
        """A channel; with `account_id`, only that account's (others are 'not found')."""
        ch = self.channels.get(channel_id)
        if ch is None or (account_id is not None and ch.account_id != account_id):
            raise ChannelNotFound("channel not found")
        return ch

    def deliver(self, channel_id: str, message: dict[str, Json]) -> None:
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        ch.backlog.append(message)
        ch.arrived.append(self.rt.clock.now())
        for q in ch.listeners:
            if q.full():  # a reader that stopped reading loses the oldest
                q.get_nowait()
            q.put_nowait(message)

    def listen(self, ch: Channel) -> asyncio.Queue[dict[str, Json]]:
        q: asyncio.Queue[dict[str, Json]] = asyncio.Queue(LISTENER_QUEUE)
        ch.listeners.add(q)
        return q

    def replay(self, ch: Channel, last: int | None) -> list[dict[str, Json]]:
        """What a new reader gets first: the last `last` answers, or (None) the recent ones."""
        if last is not None:
            return list(ch.backlog)[-last:] if last else []
        since = self.rt.clock.now() - RECENT_S
        return [m for t, m in zip(ch.arrived, ch.backlog, strict=True) if t >= since]

    @staticmethod
    def unlisten(ch: Channel, q: asyncio.Queue[dict[str, Json]]) -> None:
        ch.listeners.discard(q)

    async def run(self) -> None:
        """Carry gateway answers from the bus to their channels."""
        async for topic, message in self.rt.bus.subscribe(TOPIC):
            if isinstance(message, dict) and isinstance(message.get("data"), dict):
                self.deliver(topic[len(TOPIC) :], response(message["data"]))


def response(answer: dict[str, Json]) -> dict[str, Json]:
    """A gateway answer as the response stream carries it."""
    keys = ("msg_id", "timestamp", "success", "error", "data")
    return {k: answer.get(k) for k in keys}


def hub(rt: Runtime) -> Hub:
    found = rt.extensions.get(META_KEY)
    if not isinstance(found, Hub):
        found = rt.extensions[META_KEY] = Hub(rt, None)
    return found


async def start(rt: Runtime) -> None:
    """Load the channel registry and start carrying answers."""
    h = rt.extensions[META_KEY] = Hub(rt, await rt.store.meta(META_KEY))
    rt.spawn(h.run(), name="push3-hub")
    await asyncio.sleep(0)  # let the hub subscribe before the first command
