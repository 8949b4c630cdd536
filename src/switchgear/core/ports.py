"""The I/O seams core needs, as small Protocols: Store, DeviceLink, Bus, Peers.

Each has an in-memory implementation beside the real one (storage/memory.py,
links/memory.py, core/bus.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from switchgear.core.accounts import Credential
from switchgear.core.model import (
    Account,
    Command,
    CommandRecord,
    CommandResult,
    Device,
    DeviceEvent,
    HistoryPage,
    Json,
    StatusRecord,
)


@dataclass(slots=True)
class Batch:
    """Writes committed together in one transaction (group commit)."""

    statuses: list[StatusRecord] = field(default_factory=list)
    nvram: dict[int, Json] = field(default_factory=dict)  # device id -> blob (last wins)
    commands: dict[str, CommandRecord] = field(default_factory=dict)  # id -> record (last wins)
    meta: dict[str, Json] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.statuses or self.nvram or self.commands or self.meta)


class Store(Protocol):
    """Durable storage of accounts, credentials, registry, NVRAM, history and commands."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # accounts
    async def add_account(
        self, email: str, name: str, password_hash: str, role: str = "tenant"
    ) -> Account: ...
    async def account_by_email(self, email: str) -> tuple[Account, str] | None:
        """The account and its password hash."""
        ...

    async def accounts(self) -> list[Account]: ...
    async def set_password_hash(self, account_id: int, password_hash: str) -> None: ...

    # credentials
    async def add_credential(self, cred: Credential) -> None: ...
    async def credentials(self, account_id: int | None = None) -> list[Credential]: ...
    async def revoke_credential(self, cred_id: str, at: float) -> None: ...

    # registry
    async def add_device(self, device: Device, *, meters_most: int | None = None) -> Device:
        """Insert; the returned device carries the id the store assigned (ignores device.id).
        Conflict on a taken serial; MqttIdTaken when another device is on its MQTT id;
        MetersCapped when its account would have more than `meters_most` polled meters
        (checked in the write, whichever process writes at the same time)."""
        ...

    async def add_devices(
        self, devices: Sequence[Device], *, meters_most: int | None = None
    ) -> list[Device]:
        """Insert many in one transaction, in order (all or none: Conflict on a taken
        serial, MqttIdTaken naming the MQTT ids taken, by stored devices or by two of
        these, MetersCapped as `add_device`); the returned devices carry their ids."""
        ...

    async def devices(self, ids: Sequence[int] | None = None) -> list[Device]:
        """Every device in id order, or only those of `ids` (read by key)."""
        ...

    # device NVRAM
    async def nvram(self) -> dict[int, Json]: ...

    # history and commands
    async def history(
        self,
        device_ids: Sequence[int] | None,
        start: float,
        end: float,
        cursor: str | None = None,
        limit: int = 500,
        account_id: int | None = None,
    ) -> HistoryPage:
        """Status records with start <= ts < end, oldest first; cursor pages onwards.

        `device_ids` None: every record of `account_id` (one index range, for fleets).
        """
        ...

    async def command(self, command_id: str) -> CommandRecord | None: ...

    # meta
    async def meta(self, key: str) -> Json | None: ...
    async def claim(self, key: str, value: Json) -> Json:
        """Store `value` under `key` unless the key is taken, at once and atomically (not
        through the group commit): the value now stored, `value` if this call took it.
        Workers sharing a database agree through it on who does a thing once."""
        ...

    async def metas(self, prefix: str) -> dict[str, Json]:
        """Every meta row under `prefix` (none whose value is null), by key."""
        ...

    async def take_meta(self, key: str, value: Json | None = None) -> bool:
        """Delete the row `key` (only if it holds `value`, when given), at once and
        atomically (not through the group commit): whether this call deleted it. Of
        workers taking one row, one gets True."""
        ...

    async def sweep_meta(self, prefix: str, done: Callable[[str, Json], bool]) -> int:
        """Delete the meta rows under `prefix` that `done(key, value)` says are finished
        with, in one transaction no other write of this store interleaves: how many went."""
        ...

    # group commit
    async def commit(self, batch: Batch) -> None:
        """Write the whole batch in one transaction, durably."""
        ...


EventSink = Callable[[DeviceEvent], None]


class DeviceLink(Protocol):
    """The path between engine and devices (in-process, MQTT, HTTP polling)."""

    def attach(self, sink: EventSink) -> None:
        """Where device events go."""
        ...

    async def send(self, device_id: int, command: Command) -> CommandResult:
        """Deliver a command and return the device's answer; raises DeviceOffline."""
        ...

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        """The device's answer if it comes without waiting (an in-process twin), else None:
        then the engine awaits `send` under the command's timeout."""
        ...

    async def simulate(self, device_id: int, action: SimAction) -> None:
        """A physical-world change to a simulated device (works while offline)."""
        ...

    def timeout_for(self, device_id: int) -> float | None:
        """How long a command to this device may take; None = the engine's default."""
        ...


@dataclass(frozen=True, slots=True)
class SimAction:
    """Physical-world changes the sim routes make: mains, network, load, grid."""

    kind: str  # "power_cycle" | "online" | "load" | "grid"
    online: bool | None = None
    channel: int | None = None
    load: Json = None  # a load model description, see devices/physics.py
    frequency_hz: float | None = None
    voltage_v: float | None = None


class Bus(Protocol):
    """Event fan-out to subscribers (dashboard, native events, Push3 channels)."""

    def publish(self, topic: str, message: Json) -> None: ...

    def wanted(self, topic: str) -> bool:
        """Whether anyone listens on `topic` (so publishers can skip building messages)."""
        ...

    def subscribe(self, prefix: str = "") -> AsyncIterator[tuple[str, Json]]:
        """Messages on topics starting with `prefix`, until the iterator is closed."""
        ...


PeerHandler = Callable[[Json], Awaitable[None]]


class Peers(Protocol):
    """The other server processes sharing this one's database (API workers): what one
    changes in its caches (credentials, Push3 channels, devices) the others apply."""

    def on(self, kind: str, handler: PeerHandler) -> None:
        """Apply changes of `kind` another process tells of."""
        ...

    async def tell(self, kind: str, body: Json) -> None:
        """Tell every other process; returns once each one reachable has applied it."""
        ...
