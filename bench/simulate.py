"""Simulation speed: 24 h of virtual time for a fleet with 15-minute status updates.

    python -m bench.simulate [--devices 10000] [--hours 24] [--database sqlite]

The runtime runs on a manual clock; the fleet (power controllers on water heaters with
hot-water draws, the demo's plugs with cycling fridges, in equal parts) is advanced
`--hours` of virtual time in one `advance` call — every thermostat edge, draw edge, and
`update` status (every 900 s per device) on the way, each update written to the store
through the journal. Prints wall time and statuses written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time

from switchgear import gctune
from switchgear.core.model import Action, Device, Switch
from switchgear.core.ports import SimAction
from switchgear.runtime import Runtime
from switchgear.settings import Settings

FRIDGE = {"type": "cycling", "watts": 120.0, "on_s": 600.0, "off_s": 1200.0}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--database", choices=("sqlite", "memory"), default="sqlite")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="switchgear-sim-")
    url = "memory://" if args.database == "memory" else f"sqlite:///{tmp}/sim.db"
    rt = await Runtime.start(Settings(database_url=url, speed=0))
    try:
        account = await rt.auth.create_account("sim@example.com", "Sim", "a long password")
        t0 = time.perf_counter()
        for i in range(args.devices):
            model = "power-controller-v10" if i % 2 == 0 else "SHPLG-1"
            serial = f"PC-SIMBENCH{i:06d}-001" if i % 2 == 0 else f"SPGSIM{i:06d}"
            d = await rt.add_device(Device(0, account.id, serial, model, "sim", rt.clock.now()))
            if model == "SHPLG-1":
                await rt.simulate(account.id, d.id, SimAction("load", channel=0, load=FRIDGE))
                await rt.engine.command(account.id, d.id, Switch(Action.ON, 0))
        setup_s = time.perf_counter() - t0
        tuning = gctune.tuned()  # as the server holds the collector once started
        tuning.__enter__()
        before = rt.journal.batches
        t1 = time.perf_counter()
        await rt.advance(args.hours * 3600)
        await rt.journal.flush()
        took = time.perf_counter() - t1
        tuning.__exit__(None, None, None)
        page = await rt.engine.history(account.id, None, 0, rt.clock.now() + 1, None, 1)
        del page
        print(json.dumps({
            "devices": args.devices, "virtual_hours": args.hours, "database": args.database,
            "wall_seconds": round(took, 1),
            "updates_expected": int(args.devices * args.hours * 4),
            "group_commits": rt.journal.batches - before,
            "virtual_speedup": round(args.hours * 3600 / took),
            "setup_seconds": round(setup_s, 1),
        }, indent=2))  # fmt: skip
    finally:
        await rt.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
