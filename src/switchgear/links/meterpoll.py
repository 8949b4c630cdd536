"""Southbound: poll real smart-MAIC meters over HTTP within their rate limit.

Each polled meter has one timer on the process scheduler; a poll is an HTTP GET of
`?page=getdata`, its answer becomes the device's reported state and an `update` status.
Commands (`pout`) wait for the meter's next allowed request slot. A 429 doubles the
interval (up to 8x) until a request succeeds. Before every request the meter's URL is
checked again (links/netguard.py: DNS may have changed) and the request goes to the
checked address; redirects are never followed.

With several server processes on one PostgreSQL database only the holder of the poll
lease (links/meterlease.py) requests; it stores each answer in the store's meta, and
the others update their shadows from there at the same interval, with no history
record of their own. A command goes to the meter from the worker that received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from switchgear.core.clock import Clock
from switchgear.core.model import (
    Action,
    ChannelState,
    Command,
    CommandResult,
    Device,
    DeviceEvent,
    DeviceState,
    Json,
    MeterReading,
    StatusKind,
    Switch,
)
from switchgear.core.ports import Batch, EventSink, SimAction, Store
from switchgear.core.scheduler import Scheduler, Timer
from switchgear.errors import DeviceOffline, InvalidCommand, InvalidInput
from switchgear.links.meterlease import PollLease, SoleLease, meter_key
from switchgear.links.netguard import DEFAULT_NETWORKS, NetGuard

log = logging.getLogger(__name__)

INTERVAL_S = {"standard": 60.0, "extended": 6.0}
MAX_BACKOFF = 8.0
HTTP_TIMEOUT_S = 5.0


@dataclass
class PolledMeter:
    """What the poller keeps for one real meter."""

    device: Device
    url: str
    interval_s: float
    backoff: float = 1.0
    last_request: float | None = None
    online: bool = False
    last_on: bool = False  # the relay as last reported
    refused: bool = False  # its address was outside the allowed networks at the last poll
    timer: Timer | None = None
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    seen: float = 0.0  # a follower: the time of the last stored answer it applied

    @property
    def next_slot(self) -> float:
        if self.last_request is None:
            return 0.0
        return self.last_request + self.interval_s * self.backoff


def parse_reading(device_id: int, text: str, now: float) -> DeviceState:
    """A meter's getdata answer as a reported state; ValueError if a figure is not finite."""
    body = json.loads(text, strict=False)  # raw newlines in strings are tolerated
    data = body["data"]
    phases = [str(n) for n in (1, 2, 3) if f"V{n}" in data] or [""]

    def value(key: str, default: float = 0.0) -> float:
        entry = data.get(key)
        if not (isinstance(entry, dict) and "value" in entry):
            return default
        figure = float(entry["value"]) + 0.0  # a meter's "-0" is no reverse flow: -0.0 + 0.0 is 0.0
        if not math.isfinite(figure):  # NaN, inf, 1e400: no measurement, and not JSON either
            raise ValueError(f"{key} is not a finite number")
        return figure

    meters = tuple(
        MeterReading(
            index=i,
            voltage_v=value(f"V{p}"),
            current_a=value(f"A{p}"),
            power_w=value(f"W{p}"),
            reverse_power_w=value(f"rW{p}"),
            power_factor=value(f"PF{p}", 1.0),
            frequency_hz=value(f"Fr{p}"),
            energy_wh=value(f"Wh{p}"),
            reverse_energy_wh=value(f"rWh{p}"),
        )
        for i, p in enumerate(phases)
    )
    on = str(body.get("pout")) == "1"
    return DeviceState(
        device_id=device_id,
        ts=now,
        online=True,
        channels=(ChannelState(index=0, on=on, name="pout", kind="load"),),
        meters=meters,
        temperature_c=value("T") if "T" in data else None,
    )


class MeterPoller:
    """A DeviceLink for meters switchgear reaches over HTTP instead of simulating."""

    def __init__(
        self,
        clock: Clock,
        scheduler: Scheduler,
        client: httpx.AsyncClient | None = None,
        guard: NetGuard | None = None,
    ) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.client = client
        self.guard = guard or NetGuard(DEFAULT_NETWORKS)
        self.adding = asyncio.Lock()  # registrations, one at a time (the per-account cap)
        self._per_account: dict[int, int] = {}
        self._sinks: list[EventSink] = []
        self._meters: dict[int, PolledMeter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.lease: PollLease = SoleLease()
        self.shared: Store | None = None  # with several workers: where answers are kept
        # a follower's shadow time of a meter: an answer the holder's event (on the bus)
        # brought already is not told again
        self.heard: Callable[[int], float] = lambda device_id: 0.0

    def share(self, store: Store, lease: PollLease) -> None:
        """Poll only while `lease` is held; keep answers in `store` for the other workers."""
        self.shared, self.lease = store, lease

    def attach(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def manages(self, device_id: int) -> bool:
        return device_id in self._meters

    def polls(self, device_id: int) -> bool:
        """Whether this process alone hears the meter: it manages it and holds the lease."""
        return device_id in self._meters and self.lease.held

    def meter(self, device_id: int) -> PolledMeter:
        return self._meters[device_id]

    def count(self, account_id: int) -> int:
        """How many meters the account has polled."""
        return self._per_account.get(account_id, 0)

    def add(self, device: Device) -> None:
        """Start polling a meter (registry attrs: url, devpass, version)."""
        version = device.attrs.get("version", "standard")
        m = PolledMeter(device, device.attrs["url"], INTERVAL_S.get(version, 60.0))
        if device.id not in self._meters:
            self._per_account[device.account_id] = self.count(device.account_id) + 1
        self._meters[device.id] = m
        self._schedule(m, self.clock.now())

    async def settled(self) -> None:
        """Wait for the polls in flight (a test on a manual clock, after advancing it)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for m in self._meters.values():
            if m.timer is not None:
                m.timer.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.client is not None:
            await self.client.aclose()

    # --- polling ------------------------------------------------------------

    def _schedule(self, m: PolledMeter, due: float) -> None:
        if m.timer is not None:
            m.timer.cancel()
        m.timer = self.scheduler.call_at(due, self._due, m.device.id)

    def _due(self, device_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._poll(device_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, device_id: int) -> None:
        m = self._meters.get(device_id)
        if m is None:
            return
        if not self.lease.held:
            await self._follow(m)
            return
        async with m.busy:
            if m.last_request is not None and self.clock.now() < m.next_slot:
                return  # a command used this slot; its request scheduled the next poll
            state = await self._request(m, None)
        if state is not None:
            self._emit(m, StatusKind.UPDATE, "poll", _summary(state), state)

    async def _keep(self, m: PolledMeter, answer: dict[str, Json]) -> None:
        """The holder keeps the meter's last answer where the other workers read it."""
        if self.shared is None:
            return
        try:
            await self.shared.commit(Batch(meta={meter_key(m.device.id): answer}))
        except Exception:  # the others' shadows wait for the next poll
            log.warning("meter %s: answer not stored for the other workers", m.device.id)

    async def _follow(self, m: PolledMeter) -> None:
        """Not the holder: take the shadow from the holder's last stored answer."""
        self._schedule(m, self.clock.now() + m.interval_s)
        if self.shared is None:
            return
        try:
            answer = await self.shared.meta(meter_key(m.device.id))
        except Exception:
            log.warning("meter %s: stored answer not read", m.device.id, exc_info=True)
            return
        if not isinstance(answer, dict) or float(answer.get("ts") or 0.0) <= m.seen:
            return
        ts = float(answer["ts"] or 0.0)
        m.seen = ts
        if self.heard(m.device.id) >= ts:
            return
        text = answer.get("text")
        if isinstance(text, str):
            try:
                state = parse_reading(m.device.id, text, ts)
            except (ValueError, KeyError, TypeError):
                return
            m.online, m.last_on = True, bool(state.channels and state.channels[0].on)
        else:
            m.online, state = False, DeviceState(m.device.id, ts, online=False)
        event = DeviceEvent(m.device.id, ts, StatusKind.UPDATE, "poll", _summary(state), state,
                            record=False)  # fmt: skip
        for sink in self._sinks:
            sink(event)

    async def _request(self, m: PolledMeter, pout: str | None) -> DeviceState | None:
        """One GET; schedules the next poll; None when the meter did not give data."""
        params = {"page": "getdata", "devid": m.device.serial, "devpass": m.device.attrs["devpass"]}
        if pout is not None:
            params["pout"] = pout
        now = self.clock.now()
        m.last_request = now
        try:
            target = await self.guard.check(m.url)
        except InvalidInput:
            # said once when it happens, not at every refused poll
            level = logging.DEBUG if m.refused else logging.WARNING
            log.log(level, "meter %s: its address is not allowed now; not polled", m.device.id)
            m.refused = True
            self._went_offline(m)
            self._schedule(m, now + m.interval_s * m.backoff)
            return None
        m.refused = False
        try:
            r = await self._http().get(
                target.url,
                params=params,
                headers={"Host": target.host},
                extensions=target.extensions,
                follow_redirects=False,
            )
        except httpx.HTTPError as err:
            log.info("meter %s unreachable: %s", m.device.id, type(err).__name__)
            self._went_offline(m)
            self._schedule(m, now + m.interval_s * m.backoff)
            return None
        if r.status_code == 429:
            m.backoff = min(m.backoff * 2, MAX_BACKOFF)
            log.info(
                "meter %s answered 429; polling every %.0f s", m.device.id, m.interval_s * m.backoff
            )
            self._schedule(m, now + m.interval_s * m.backoff)
            return None
        if r.status_code != 200:
            log.warning("meter %s answered %s", m.device.id, r.status_code)
            self._went_offline(m)
            self._schedule(m, now + m.interval_s * m.backoff)
            return None
        m.backoff = 1.0
        self._schedule(m, now + m.interval_s)
        try:
            state = parse_reading(m.device.id, r.text, self.clock.now())
        except (ValueError, KeyError, TypeError):
            log.warning("meter %s sent an answer that is not a reading", m.device.id)
            return None
        m.online = True
        m.last_on = bool(state.channels and state.channels[0].on)
        await self._keep(m, {"ts": state.ts, "text": r.text})
        return state

    def _went_offline(self, m: PolledMeter) -> None:
        if m.online:
            m.online = False
            state = DeviceState(m.device.id, self.clock.now(), online=False)
            self._emit(m, StatusKind.CONNECTION, "offline", {"online": False}, state)
            if self.shared is not None:  # the other workers' shadows go offline too
                task = asyncio.get_running_loop().create_task(
                    self._keep(m, {"ts": state.ts, "text": None})
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _emit(
        self, m: PolledMeter, kind: StatusKind, reason: str, data: dict[str, Json],
        state: DeviceState, channel: int | None = None,
    ) -> None:  # fmt: skip
        event = DeviceEvent(m.device.id, self.clock.now(), kind, reason, data, state, channel)
        for sink in self._sinks:
            sink(event)

    def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            # no proxy from the environment: the request must go to the checked address
            self.client = httpx.AsyncClient(
                timeout=HTTP_TIMEOUT_S, follow_redirects=False, trust_env=False
            )
        return self.client

    # --- commands -----------------------------------------------------------

    async def send(self, device_id: int, command: Command) -> CommandResult:
        m = self._meters.get(device_id)
        if m is None:
            raise DeviceOffline("device is not connected")
        if not isinstance(command, Switch) or command.channel not in (0, None) or command.delay:
            raise InvalidCommand("a polled meter only switches its relay now", field="command")
        if m.timer is not None:  # the command's request is the next poll
            m.timer.cancel()
        async with m.busy:
            await self._at(m.next_slot)
            on = command.action is Action.ON or (command.action is Action.TOGGLE and not m.last_on)
            state = await self._request(m, "1" if on else "0")
        if state is None:
            raise DeviceOffline("the meter did not take the command")
        self._emit(m, StatusKind.RELAY, "api", {"on": state.channels[0].on}, state, 0)
        return CommandResult(ok=True, data={"on": [state.channels[0].on]})

    async def _at(self, due: float) -> None:
        """Wait until the clock reaches `due` (a manual clock included)."""
        if due <= self.clock.now():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: object) -> None:
            if not fut.done():
                fut.set_result(None)

        self.scheduler.call_at(due, wake)
        await fut

    async def simulate(self, device_id: int, action: SimAction) -> None:
        raise InvalidCommand("a real meter cannot be simulated", field="device")

    def send_now(self, device_id: int, command: Command) -> CommandResult | None:
        return None  # the answer is the next poll's

    def timeout_for(self, device_id: int) -> float | None:
        m = self._meters.get(device_id)
        if m is None:
            return None
        return max(0.0, m.next_slot - self.clock.now()) + HTTP_TIMEOUT_S * 2


def _summary(state: DeviceState) -> dict[str, Json]:
    return {
        "power": round(sum(x.power_w for x in state.meters), 2),
        "energy_wh": round(sum(x.energy_wh for x in state.meters), 3),
        "voltage": state.meters[0].voltage_v if state.meters else None,
        "on": state.channels[0].on if state.channels else None,
    }
