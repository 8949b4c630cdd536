"""The engine: registry, shadows, command lifecycle, status history and event fan-out."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from switchgear.core.accounts import owned
from switchgear.core.catalog import model as catalog_model
from switchgear.core.clock import Clock
from switchgear.core.journal import Journal
from switchgear.core.model import (
    Command,
    CommandRecord,
    CommandState,
    Device,
    DeviceEvent,
    DeviceState,
    Family,
    HistoryPage,
    Json,
    StatusRecord,
    command_params,
    short_id,
)
from switchgear.core.ports import Bus, DeviceLink, Store
from switchgear.errors import (
    CommandNotFound,
    CommandRejected,
    CommandTimedOut,
    DeviceError,
    DeviceNotFound,
    DeviceOffline,
)

log = logging.getLogger(__name__)


def event_message(ev: DeviceEvent, record_id: str | None) -> dict[str, Json]:
    """The JSON an event is published as."""
    return {
        "id": record_id,
        "device_id": ev.device_id,
        "ts": ev.ts,
        "kind": ev.kind.value,
        "reason": ev.reason,
        "channel": ev.channel,
        "data": dict(ev.data),
        "state": ev.state.to_json(),
    }


_last_id_ns = 0  # the last command id's time: ids never go back, whatever the clock does


def new_command_id() -> str:
    """32 hex digits: the wall clock's nanoseconds, then 64 random bits. Not a secret
    (reads check the owner); time first, so the store's command index takes each new id
    at its right edge — random ids put every command of a group commit on its own leaf,
    and the commit wrote each of those pages whole."""
    global _last_id_ns
    _last_id_ns = max(time.time_ns(), _last_id_ns + 1)
    return f"{_last_id_ns:016x}{random.getrandbits(64):016x}"


class Engine:
    """What a cloud keeps: accounts' devices, their last reported state, commands, history."""

    def __init__(
        self,
        store: Store,
        link: DeviceLink,
        bus: Bus,
        clock: Clock,
        journal: Journal,
        command_timeout_s: float = 10.0,
    ) -> None:
        self.store = store
        self.link = link
        self.bus = bus
        self.clock = clock
        self.journal = journal
        self.command_timeout_s = command_timeout_s
        self._devices: dict[int, Device] = {}
        self._by_serial: dict[tuple[int, str], Device] = {}
        self._serials: dict[str, set[str]] = {}  # serial -> models registered with it
        self._shadows: dict[int, DeviceState] = {}
        # each account's devices by id: a listing costs what the account has, not the fleet
        self._by_account: dict[int, dict[int, Device]] = {}
        # devices by (family, online), kept as devices register and come and go online, so
        # the metrics scrape reads counts instead of walking the fleet
        self._counts: Counter[tuple[str, bool]] = Counter()
        self._watchers: list[Callable[[Device], None]] = []  # faces' own indexes
        # commands in flight; a finished one is read from the store, where it is durable
        # before its id reaches anyone (the caller learns it once `command` returns)
        self._in_flight: dict[str, CommandRecord] = {}
        self.outcomes: Counter[str] = Counter()  # finished commands by state, for metrics
        link.attach(self.on_event)

    # --- registry -----------------------------------------------------------

    async def load(self) -> list[Device]:
        """Load the registry from the store."""
        devices = await self.store.devices()
        for d in devices:
            self._register(d)
        return devices

    def known(self, device_id: int) -> bool:
        return device_id in self._devices

    def register(self, device: Device) -> None:
        """Take a device another process stored into the registry."""
        self._register(device)

    def watch(self, watcher: Callable[[Device], None]) -> None:
        """Call `watcher` with each device registered from now on (or registered again), so a
        face keeps an index of its own without rebuilding it from the whole registry."""
        self._watchers.append(watcher)

    def _register(self, device: Device) -> None:
        online = bool(self.shadow(device.id).online)
        old = self._devices.get(device.id)
        if old is not None:  # registered again: it may have moved account, serial or model
            if old.account_id != device.account_id:
                self._by_account.get(old.account_id, {}).pop(device.id, None)
            old_key = (old.account_id, old.serial)
            if (
                old_key != (device.account_id, device.serial)
                and self._by_serial.get(old_key) is old
            ):
                del self._by_serial[old_key]
            self._counts[_family(old), online] -= 1
        self._devices[device.id] = device
        self._by_account.setdefault(device.account_id, {})[device.id] = device
        self._counts[_family(device), online] += 1
        self._by_serial[(device.account_id, device.serial)] = device
        self._serials.setdefault(device.serial, set()).add(device.model)
        for watcher in self._watchers:
            watcher(device)

    async def add_device(self, device: Device, meters_most: int | None = None) -> Device:
        """Register a new device (the store assigns its id; `meters_most`: Store.add_device)."""
        catalog_model(device.model)
        stored = await self.store.add_device(device, meters_most=meters_most)
        self._register(stored)
        return stored

    async def add_devices(
        self, devices: Sequence[Device], meters_most: int | None = None
    ) -> list[Device]:
        """Register many new devices in one store transaction (all or none)."""
        for d in devices:
            catalog_model(d.model)
        stored = await self.store.add_devices(devices, meters_most=meters_most)
        for d in stored:
            self._register(d)
        return stored

    def serial_taken(self, serial: str, model: str | None = None) -> bool:
        """Whether any account has a device with this serial (of this model, if given)."""
        models = self._serials.get(serial, set())
        return bool(models) and (model is None or model in models)

    def __len__(self) -> int:
        return len(self._devices)

    def all_devices(self) -> Iterable[Device]:
        """Every device of every account: for indexes built once, never per request."""
        return self._devices.values()

    def device_counts(self) -> dict[tuple[str, bool], int]:
        """Registered devices by (family, online): kept up to date, not counted here."""
        return {key: n for key, n in self._counts.items() if n > 0}

    def devices(
        self, account_id: int, family: Family | None = None, tag: str | None = None
    ) -> list[Device]:
        """The account's devices, in id order, optionally filtered (the account's index:
        the rest of the fleet costs nothing)."""
        mine = self._by_account.get(account_id)
        if not mine:
            return []
        out = [
            d
            for d in mine.values()
            if (family is None or catalog_model(d.model).family == family)
            and (tag is None or tag in d.tags)
        ]
        out.sort(key=lambda d: d.id)
        return out

    def device(self, account_id: int, device_id: int) -> Device:
        """The account's device; another account's device is exactly as missing."""
        return owned(self._devices.get(device_id), account_id)

    def device_by_serial(self, account_id: int, serial: str) -> Device:
        found = self._by_serial.get((account_id, serial))
        if found is None:
            raise DeviceNotFound("device not found")
        return found

    def shadow(self, device_id: int) -> DeviceState:
        """The last reported state (offline and empty if the device never reported)."""
        state = self._shadows.get(device_id)
        if state is None:
            return DeviceState(device_id=device_id, ts=0.0, online=False)
        return state

    # --- events -------------------------------------------------------------

    def on_event(self, ev: DeviceEvent) -> None:
        """A device reported: update the shadow, append history, fan out."""
        device = self._devices.get(ev.device_id)
        if device is None:
            log.warning("event from unknown device %s", ev.device_id)
            return
        self._set_shadow(device, ev.state)
        record_id = ev.record_id  # None but for an event another worker records
        if ev.record:
            record_id = short_id()
            self.journal.add_status(
                StatusRecord(  # positional: once per status
                    record_id,
                    ev.device_id,
                    ev.ts,
                    ev.kind,
                    ev.reason,
                    ev.data,
                    ev.channel,
                    device.account_id,
                )
            )
        topic, extra = f"device/{device.account_id}/{device.id}", ev.topic or ""
        to_device, to_extra = self.bus.wanted(topic), bool(extra) and self.bus.wanted(extra)
        if to_device or to_extra:  # building the message copies the whole state: only then
            message = event_message(ev, record_id)
            if to_device:
                self.bus.publish(topic, message)
            if to_extra:
                self.bus.publish(extra, message)

    def record(self, ev: DeviceEvent, record_id: str) -> None:
        """Append the history record of an event whose shadow and fan-out every worker
        does itself (`on_event` with a SharedEvent): the elected worker's part."""
        device = self._devices.get(ev.device_id)
        if device is not None:
            record = StatusRecord(
                record_id, ev.device_id, ev.ts, ev.kind, ev.reason, ev.data, ev.channel,
                device.account_id,
            )  # fmt: skip
            self.journal.add_status(record)

    def remote_event(self, topic: str, message: Json) -> None:
        """Another worker's event of a device only it hears: keep the shadow from it."""
        if not topic.startswith("device/") or not isinstance(message, dict):
            return
        state, device_id = message.get("state"), message.get("device_id")
        device = self._devices.get(device_id) if isinstance(device_id, int) else None
        if isinstance(state, dict) and device is not None:
            self._set_shadow(device, DeviceState.from_json(state))

    def _set_shadow(self, device: Device, state: DeviceState) -> None:
        """Keep the device's last state, and the online counts when it comes or goes."""
        old = self._shadows.get(device.id)
        was, now = old is not None and old.online, state.online
        self._shadows[device.id] = state
        if was != now:
            family = _family(device)
            self._counts[family, bool(was)] -= 1
            self._counts[family, bool(now)] += 1

    # --- commands -----------------------------------------------------------

    async def command(
        self, account_id: int, device_id: int, command: Command, *, timeout_s: float | None = None
    ) -> CommandRecord:
        """Run a command through its lifecycle; returns once its final state is durable.

        Invalid commands raise (InvalidInput) and leave no trace; device errors end the
        command as failed or timed_out in the returned record.
        """
        device = self.device(account_id, device_id)
        created = self.clock.now()
        command_id = new_command_id()
        params = command_params(command)
        result_json: dict[str, Json] | None = None
        error: str | None
        try:
            result = self.link.send_now(device.id, command)
            if result is None:  # the device answers later: in flight, up to the timeout
                self._in_flight[command_id] = CommandRecord(
                    command_id, device.id, account_id, command.name, params,
                    CommandState.SENT, created, created,  # queued and sent at once
                )  # fmt: skip
                limit = timeout_s or self.link.timeout_for(device.id) or self.command_timeout_s
                async with asyncio.timeout(limit):  # unlike wait_for, no task per command
                    result = await self.link.send(device.id, command)
        except TimeoutError:
            state, error = CommandState.TIMED_OUT, "device did not answer in time"
        except DeviceError as err:
            state, error = CommandState.FAILED, err.message
        except BaseException:  # invalid, or cancelled: no trace
            self._in_flight.pop(command_id, None)
            raise
        else:
            state = CommandState.DONE if result.ok else CommandState.FAILED
            result_json = {"codes": list(result.codes), "data": dict(result.data)}
            error = result.error
        rec = CommandRecord(  # positional, not keywords: this is the command hot path
            command_id, device.id, account_id, command.name, params, state, created,
            self.clock.now(), result_json, error,
        )  # fmt: skip
        self.outcomes[state] += 1
        self.journal.put_command(rec)
        if command_id not in self._in_flight:
            await self.journal.flush()
            return rec
        self._in_flight[command_id] = rec  # finished: in memory until it is durable
        try:
            await self.journal.flush()
        finally:
            del self._in_flight[command_id]
        return rec

    async def get_command(self, account_id: int, command_id: str) -> CommandRecord:
        rec = self._in_flight.get(command_id) or await self.store.command(command_id)
        if rec is None or rec.account_id != account_id:
            raise CommandNotFound("command not found")
        return rec

    # --- history ------------------------------------------------------------

    async def history(
        self,
        account_id: int,
        device_ids: Iterable[int] | None,
        start: float,
        end: float,
        cursor: str | None = None,
        limit: int = 500,
    ) -> HistoryPage:
        """Status records of the account's devices (None: all of them), oldest first."""
        await self.journal.flush()
        if device_ids is None:
            return await self.store.history(None, start, end, cursor, limit, account_id)
        ids = [self.device(account_id, i).id for i in device_ids]
        return await self.store.history(ids, start, end, cursor, limit)


def _family(device: Device) -> str:
    return str(catalog_model(device.model).family)


def raise_for_state(rec: CommandRecord) -> None:
    """Turn a failed or timed-out command into the matching domain error."""
    if rec.state is CommandState.TIMED_OUT:
        raise CommandTimedOut(rec.error or "device did not answer in time", command_id=rec.id)
    if rec.state is CommandState.FAILED:
        if rec.result is None:  # never reached the device
            raise DeviceOffline(rec.error or "device offline", command_id=rec.id)
        raise CommandRejected(rec.error or "device rejected the command", command_id=rec.id)


__all__ = ["Engine", "event_message", "raise_for_state"]
