"""MemoryStore: the in-memory fake of the Store port, with the same behaviour."""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Sequence
from dataclasses import replace

from switchgear.core.accounts import Credential
from switchgear.core.model import Account, CommandRecord, Device, HistoryPage, Json, StatusRecord
from switchgear.core.ports import Batch
from switchgear.errors import Conflict, MqttIdTaken
from switchgear.links.shelly import fold
from switchgear.storage import cursor as cursors
from switchgear.storage.metercap import meters_capped
from switchgear.storage.mqttids import repeated, stored_mqtt_id


class MemoryStore:
    """Dicts and lists; nothing survives the process."""

    def __init__(self) -> None:
        self._accounts: dict[int, tuple[Account, str]] = {}
        self._creds: dict[str, Credential] = {}
        self._devices: dict[int, Device] = {}
        self._serial_models: set[tuple[str, str]] = set()  # the unique (serial, model)
        self._mqtt_ids: dict[str, int] = {}  # the unique MQTT id, folded -> its device
        # (mqttids.py: ids differing in case only are one)
        self._nvram: dict[int, Json] = {}
        self._statuses: list[tuple[float, int, StatusRecord]] = []  # sorted by (ts, seq)
        self._commands: dict[str, CommandRecord] = {}
        self._meta: dict[str, Json] = {}
        self._seq = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add_account(
        self, email: str, name: str, password_hash: str, role: str = "tenant"
    ) -> Account:
        if any(a.email == email for a, _ in self._accounts.values()):
            raise Conflict(f"an account with email {email!r} exists", field="email")
        account = Account(len(self._accounts) + 1, email, name, 0.0, role)
        self._accounts[account.id] = (account, password_hash)
        return account

    async def account_by_email(self, email: str) -> tuple[Account, str] | None:
        return next(((a, h) for a, h in self._accounts.values() if a.email == email), None)

    async def accounts(self) -> list[Account]:
        return [a for a, _ in self._accounts.values()]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        account, _ = self._accounts[account_id]
        self._accounts[account_id] = (account, password_hash)

    async def add_credential(self, cred: Credential) -> None:
        if cred.id in self._creds:
            raise Conflict("credential id exists", field="id")
        self._creds[cred.id] = cred

    async def credentials(self, account_id: int | None = None) -> list[Credential]:
        return [c for c in self._creds.values() if account_id in (None, c.account_id)]

    async def revoke_credential(self, cred_id: str, at: float) -> None:
        if cred_id in self._creds:
            self._creds[cred_id] = replace(self._creds[cred_id], revoked_at=at)

    async def add_device(self, device: Device, *, meters_most: int | None = None) -> Device:
        return self._add([device], f"a device with serial {device.serial!r}", meters_most)[0]

    async def add_devices(
        self, devices: Sequence[Device], *, meters_most: int | None = None
    ) -> list[Device]:
        return self._add(devices, "a device with one of these serials", meters_most)

    def _add(self, devices: Sequence[Device], what: str, meters_most: int | None) -> list[Device]:
        """All or none, as one transaction: Conflict on a taken serial, MqttIdTaken on an
        id, MetersCapped past the accounts' cap on polled meters."""
        if meters_most is not None:
            meters_capped(self._devices.values(), devices, meters_most)
        ids = [i for i in map(stored_mqtt_id, devices) if i is not None]
        taken = repeated(ids) | {i for i in ids if fold(i) in self._mqtt_ids}
        if taken:  # named first, as SqlStore does when a serial is taken too
            raise MqttIdTaken(taken, "this MQTT id is taken")
        keys = [(d.serial, d.model) for d in devices]
        if len(set(keys)) < len(keys) or any(k in self._serial_models for k in keys):
            raise Conflict(f"{what} exists", field="serial")
        stored = [replace(d, id=len(self._devices) + 1 + n) for n, d in enumerate(devices)]
        for device in stored:
            self._keep(device)
        return stored

    def _keep(self, device: Device) -> None:
        self._devices[device.id] = device
        self._serial_models.add((device.serial, device.model))
        mqtt_id = stored_mqtt_id(device)
        if mqtt_id is not None:
            self._mqtt_ids[fold(mqtt_id)] = device.id

    async def devices(self, ids: Sequence[int] | None = None) -> list[Device]:
        if ids is not None:
            return [self._devices[i] for i in sorted(set(ids)) if i in self._devices]
        return sorted(self._devices.values(), key=lambda d: d.id)

    async def nvram(self) -> dict[int, Json]:
        return copy.deepcopy(self._nvram)

    async def history(
        self,
        device_ids: Sequence[int] | None,
        start: float,
        end: float,
        cursor: str | None = None,
        limit: int = 500,
        account_id: int | None = None,
    ) -> HistoryPage:
        after = cursors.decode(cursor) if cursor else None
        wanted = None if device_ids is None else set(device_ids)
        lo = bisect.bisect_left(self._statuses, (start, -1))
        out: list[tuple[float, int, StatusRecord]] = []
        for ts, seq, rec in self._statuses[lo:]:
            if ts >= end:
                break
            mine = rec.account_id == account_id if wanted is None else rec.device_id in wanted
            if not mine or (after is not None and (ts, seq) <= after):
                continue
            out.append((ts, seq, rec))
            if len(out) > limit:
                break
        more = len(out) > limit
        page = out[:limit]
        nxt = cursors.encode(page[-1][0], page[-1][1]) if more and page else None
        return HistoryPage(tuple(r for _, _, r in page), nxt)

    async def command(self, command_id: str) -> CommandRecord | None:
        return self._commands.get(command_id)

    async def meta(self, key: str) -> Json | None:
        return copy.deepcopy(self._meta.get(key))

    async def claim(self, key: str, value: Json) -> Json:
        if self._meta.get(key) is None:
            self._meta[key] = copy.deepcopy(value)
        return copy.deepcopy(self._meta[key])

    async def metas(self, prefix: str) -> dict[str, Json]:
        return {k: copy.deepcopy(v) for k, v in self._meta.items()
                if k.startswith(prefix) and v is not None}  # fmt: skip

    async def take_meta(self, key: str, value: Json | None = None) -> bool:
        if value is not None and self._meta.get(key) != value:
            return False
        return self._meta.pop(key, None) is not None

    async def sweep_meta(self, prefix: str, done: Callable[[str, Json], bool]) -> int:
        gone = [k for k, v in self._meta.items() if k.startswith(prefix) and done(k, v)]
        for key in gone:
            del self._meta[key]
        return len(gone)

    async def commit(self, batch: Batch) -> None:
        for rec in batch.statuses:
            self._seq += 1
            bisect.insort(self._statuses, (rec.ts, self._seq, rec), key=lambda t: (t[0], t[1]))
        self._nvram.update(copy.deepcopy(batch.nvram))
        self._commands.update(batch.commands)
        self._meta.update(copy.deepcopy(batch.meta))
