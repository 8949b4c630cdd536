"""FFR fleet: 10,000 power controllers with FFR on; a grid frequency step below the trip
threshold; wall time from the step to the last relay open.

    python -m bench.ffr [--controllers 10000] [--periods 10]

The whole runtime runs in one process (engine, journal, in-memory store, scheduler,
twins) with the virtual clock at 1x, as a server does. Every controller gets the seed's
FFR settings (trip 59.7 Hz, return 59.8 Hz, `--periods` grid cycles). The step is
`set_grid(59.6 Hz)` for the fleet's account. A relay opens when its twin opens it; the
`relay/ffr` status carries that instant (virtual time at 1x, so wall time since the
step), and a sink beside the engine's notes when each report arrives, which is later:
a controller opens its relay first and logs it after (the scheduler's `soon` lane, so
10,000 reports never delay a trip). The physical part of the delay is `periods` cycles
of 60 Hz (10 cycles = 167 ms); the rest is switchgear's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time

from switchgear import gctune
from switchgear.core.model import Device, DeviceEvent, FirmwareCommand, StatusKind
from switchgear.runtime import Runtime
from switchgear.settings import Settings


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--controllers", type=int, default=10_000)
    ap.add_argument("--periods", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="switchgear-ffr-")
    rt = await Runtime.start(Settings(database_url=f"sqlite:///{tmp}/ffr.db", speed=1.0))
    try:
        account = await rt.auth.create_account("ffr@example.com", "FFR", "a long password")
        t0 = time.perf_counter()
        ffr = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8,
               "periods": args.periods, "delay": 10}  # fmt: skip
        for i in range(args.controllers):
            serial = f"PC-FFRBENCH{i:06d}-001"
            device = Device(0, account.id, serial, "power-controller-v10", "wh", rt.clock.now())
            d = await rt.add_device(device)
            twin = rt.link.fleet.get(d.id)
            assert twin is not None
            twin.handle(FirmwareCommand("pc.config", {"ffr": ffr}))
        await rt.journal.flush()
        setup_s = time.perf_counter() - t0
        opened: list[float] = []  # virtual time each relay opened (the twin's timestamp)
        reported: list[float] = []  # wall time each report reached the engine
        done = asyncio.Event()

        def sink(ev: DeviceEvent) -> None:
            if ev.kind is StatusKind.RELAY and ev.reason == "ffr":
                opened.append(ev.ts)
                reported.append(time.perf_counter())
                if len(opened) == args.controllers:
                    done.set()

        rt.link.attach(sink)
        await asyncio.sleep(1)  # let the journal settle
        step = time.perf_counter()
        step_v = rt.clock.now()
        await rt.set_grid(account.id, 59.6, None)
        stepped = time.perf_counter()
        await asyncio.wait_for(done.wait(), 60)
        physical = args.periods / 60
        result = {
            "controllers": args.controllers,
            "periods": args.periods,
            "physical_delay_ms": round(physical * 1000, 1),
            "step_to_first_open_ms": round((min(opened) - step_v) * 1000, 1),
            "step_to_last_open_ms": round((max(opened) - step_v) * 1000, 1),
            "beyond_physics_ms": round((max(opened) - step_v - physical) * 1000, 1),
            "step_to_last_report_ms": round((max(reported) - step) * 1000, 1),
            "set_grid_call_ms": round((stepped - step) * 1000, 1),
            "setup_s": round(setup_s, 1),
        }
        print(json.dumps(result, indent=2))
    finally:
        await rt.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    with gctune.tuned():  # as the server holds the collector
        asyncio.run(main())
