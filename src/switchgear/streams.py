"""Admission of long-lived streams (SSE, Push3 `/sub` and `/ws`), and their end with the credential.

Every stream is a `Lease` taken from the runtime's `StreamGate` under a key: the
credential it was opened with (or, for a Push3 channel read without a key, the channel
id, which is then the capability). A key holds at most `per_key` streams and the server
process at most `total` (each of several workers counts its own: a count in the database
would keep the places of a worker killed with -9); one more is refused with
`RateLimited` (each face answers in its own error shape). A lease ends when its
credential is revoked (`Auth` tells the gate) or reaches its expiry on the server's
clock; the stream then closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from switchgear.core.accounts import Credential
from switchgear.core.scheduler import Scheduler, Timer
from switchgear.errors import RateLimited

if TYPE_CHECKING:
    from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")
EXTENSION = "streams"
FIRST = asyncio.FIRST_COMPLETED


class StreamEnded(Exception):
    """The lease of a stream ended: its credential was revoked or expired."""


class Lease:
    """One open stream; `ended` is set (with `reason`) when it must close."""

    def __init__(self, gate: StreamGate, key: str, cred_id: str | None) -> None:
        self.gate = gate
        self.key = key
        self.cred_id = cred_id
        self.ended = asyncio.Event()
        self.reason = ""
        self.timer: Timer | None = None

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    async def wait(self, fut: asyncio.Future[T], within: float | None = None) -> T:
        """`fut`'s result; StreamEnded as soon as the lease ends; TimeoutError after
        `within` seconds (`fut` keeps running: the next wait takes it up again)."""
        if not self.ended.is_set():
            stop = asyncio.ensure_future(self.ended.wait())
            waits: set[asyncio.Future[Any]] = {fut, stop}
            try:
                await asyncio.wait(waits, timeout=within, return_when=FIRST)
            finally:
                stop.cancel()
        if self.ended.is_set():
            raise StreamEnded(self.reason)
        if fut.done():
            return fut.result()
        raise TimeoutError

    def release(self) -> None:
        self.gate.release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class StreamGate:
    """Open streams per key, with caps; ends those of a credential that stops being valid."""

    def __init__(self, scheduler: Scheduler, per_key: int, total: int) -> None:
        self._scheduler = scheduler
        self.per_key = per_key
        self.total = total
        self._by_key: dict[str, set[Lease]] = {}
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def acquire(self, cred: Credential | None, key: str | None = None) -> Lease:
        """A lease for a stream opened with `cred` (or, without one, under `key`)."""
        name = key if cred is None else f"cred:{cred.id}"
        assert name is not None
        held = self._by_key.setdefault(name, set())
        if len(held) >= self.per_key:
            raise RateLimited(
                f"too many open streams for this credential (at most {self.per_key})",
                retry_after=1.0,
            )
        if self._open >= self.total:
            raise RateLimited(f"too many open streams (at most {self.total})", retry_after=1.0)
        lease = Lease(self, name, None if cred is None else cred.id)
        held.add(lease)
        self._open += 1
        if cred is not None and cred.expires_at is not None:
            lease.timer = self._scheduler.call_at(cred.expires_at, _expire, lease)
        return lease

    def release(self, lease: Lease) -> None:
        held = self._by_key.get(lease.key)
        if held is None or lease not in held:
            return
        held.discard(lease)
        self._open -= 1
        if not held:
            del self._by_key[lease.key]
        if lease.timer is not None:
            lease.timer.cancel()

    def credential_ended(self, cred: Credential) -> None:
        """End every stream opened with `cred` (revoked, or no longer valid)."""
        for lease in list(self._by_key.get(f"cred:{cred.id}", ())):
            lease.end("credential revoked")
        log.info("streams of credential %s closed", cred.id)


class LeasedStream(StreamingResponse):
    """A streaming response that gives its lease back however it ends (even when the
    client leaves before its body starts)."""

    def __init__(self, lease: Lease, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()


def gate(rt: Runtime) -> StreamGate:
    """The runtime's stream gate, made on first use (and told of every revocation)."""
    found = rt.extensions.get(EXTENSION)
    if not isinstance(found, StreamGate):
        s = rt.settings
        found = StreamGate(rt.scheduler, s.streams_per_credential, s.max_streams)
        rt.auth.listeners.append(found.credential_ended)
        rt.extensions[EXTENSION] = found
    return found


def _expire(lease: Lease) -> None:
    lease.end("credential expired")
