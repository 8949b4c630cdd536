"""Two workers on one database see the same device reports: each FFR event is recorded once,
from the reports, at the resolution they had."""

from __future__ import annotations

from typing import Any

from switchgear.api.ffr import evidence_csv
from switchgear.core.ffr import BY_ID
from switchgear.core.model import (
    ChannelState,
    DeviceEvent,
    DeviceState,
    MeterReading,
    StatusKind,
)
from switchgear.core.ports import Batch
from switchgear.ffr.model import Group
from switchgear.ffr.service import GROUPS_KEY, FfrService
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import StoreFactory

A, B = 9001, 9002  # controllers in fleet processes: known here only by their reports
WATTS = {A: 4500.0, B: 3000.0}


def report(
    device: int, ts: float, kind: StatusKind, reason: str, on: bool, **data: Any
) -> DeviceEvent:
    """What a fleet-process controller publishes: the event with its whole state."""
    watts = WATTS[device] if on else 0.0
    meter = MeterReading(0, 240.0, watts / 240, watts, 0.0, 1.0, 60.0, 0.0, 0.0)
    periods = 10 if device == A else 30  # B's tenant set 30 grid cycles: it is late
    state = DeviceState(device, ts, True, (ChannelState(0, on),), (meter,),
                        extra={"config": {"ffr": {"periods": periods}}})  # fmt: skip
    return DeviceEvent(device, ts, kind, reason, {"on": on, **data}, state, 0)


def stream(t0: float) -> list[DeviceEvent]:
    """Both controllers' reports over the event: a state update every second, A's trip
    after 10 grid cycles, B's after 30, A's return when the frequency is back at 60 s."""
    out = []
    for k in range(-10, 901):
        for d in (A, B):
            on = k <= 0 or (d == A and k >= 60)
            out.append(report(d, t0 + k, StatusKind.UPDATE, "device", on))
    for d, trip in ((A, 10 / 60), (B, 30 / 60)):
        out.append(report(d, t0 + trip, StatusKind.TRIGGER, "ffr", False, frequency=59.8))
        out.append(report(d, t0 + trip, StatusKind.RELAY, "ffr", False))
    out.append(report(A, t0 + 60, StatusKind.TRIGGER, "ffrr", True, frequency=60.0))
    out.append(report(A, t0 + 60, StatusKind.RELAY, "auto", True))
    return sorted(out, key=lambda e: e.ts)


async def test_two_workers_record_one_event_from_the_reports(make_store: StoreFactory) -> None:
    group = Group(1, 1, "fleet", BY_ID["ercot-ffr"], 7.5, [A, B], [], 0.0)
    first = make_store()
    await first.open()
    await first.commit(Batch(meta={GROUPS_KEY: [group.to_json()]}))
    await first.close()
    settings = Settings(database_url="memory://", speed=0)
    workers = [await Runtime.start(settings, make_store()) for _ in range(2)]
    try:
        services = [await FfrService.start(rt) for rt in workers]
        t0 = float(int(max(rt.clock.now() for rt in workers))) + 20
        for e in stream(t0):  # the broker gives every worker every report
            for svc in services:
                svc.device_event(e)
        for rt, svc in zip(workers, services, strict=True):
            await rt.advance(t0 + 901 - rt.clock.now())
            await svc.settled()
        lists = [await svc.events(1, None) for svc in services]
        assert lists[0] == lists[1] and [e["id"] for e in lists[0]] == [1]  # one event
        store = workers[0].store
        claim = await store.meta(f"ffr:crossing:1:{round(t0 * 1000)}")
        assert claim == {"id": 1, "worker": claim["worker"]}  # type: ignore[index]
        assert claim["worker"] in {svc.worker for svc in services}  # type: ignore[index]
        assert await store.meta("ffr:id:2") in (
            None,
            {"void": f"ffr:crossing:1:{round(t0 * 1000)}"},
        )
        ev = await services[1].event(1, 1)
        r = ev.report
        assert r["started_at"] == t0  # A's trip, 10 of its grid cycles after the crossing
        assert [(d["device_id"], d["response_s"], d["shed_kw"], d["support_s"], d["compliant"])
                for d in r["devices"]] == [  # type: ignore[union-attr]
            (A, round(10 / 60, 6), 4.5, round(60 - 10 / 60, 6), True),
            (B, 0.5, 3.0, 900 - 0.5, False),
        ]  # fmt: skip
        assert (r["delivered_kw"], r["compliant"]) == (4.5, False)
        assert r["evidence"]["reported_devices"] == 2  # type: ignore[index]
        assert r["evidence"]["power_resolution_s"] == 1.0  # type: ignore[index]
        text, resolution = evidence_csv(ev)
        assert resolution == 1.0
        lines = text.splitlines()
        assert lines[0] == "time,frequency_hz,active_power_kw,power_resolution_s,observed"
        at = {round(k * 0.1 - 10, 1): line.split(",")[1:] for k, line in enumerate(lines[1:])}
        assert at[-10.0] == ["60.000", "7.500", "1", "true"]  # the resolution, in the file
        assert at[0.1][:2] == ["59.800", "7.500"]
        assert at[0.2][1] == "3.000"  # A open (its reported instant), B not yet
        assert at[0.5][1] == "0.000"
        assert at[60.0][:2] == ["60.000", "4.500"]
    finally:
        for rt in workers:
            await rt.stop()


async def test_a_key_is_claimed_once_by_stores_on_one_database(make_store: StoreFactory) -> None:
    import asyncio

    stores = [make_store(), make_store()]
    for s in stores:
        await s.open()
    try:
        got = await asyncio.gather(*(s.claim("k", {"by": n}) for n, s in enumerate(stores)))
        assert got[0] == got[1] in ({"by": 0}, {"by": 1})  # both agree on the one who took it
        assert await stores[0].claim("k", {"by": 2}) == got[0]  # taken stays taken
        assert await stores[1].meta("k") == got[0]
    finally:
        for s in stores:
            await s.close()
