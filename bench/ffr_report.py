"""FFR event report: 10,000 enrolled controllers, one grid event, the report at window close.

    python -m bench.ffr_report [--controllers 10000]

The whole runtime in one process on a SQLite file, with a manual clock. The controllers
(4.5 kW heaters, one in ten satisfied and one in a hundred set to 30 grid cycles, so the
report has late devices and under-delivery to write) are enrolled in an ERCOT FFR group
through the engine. The grid steps to 59.8 Hz for 60 s; the clock runs to 0.1 s before
the 15-minute window ends, then across it. Measured: the wall time of that last step
(judging 10,000 devices — the 1,000 thermostats' power replayed from the crossing — and
committing the report), of the evidence CSV (9,101 rows),
of the grid step (every trip recorded) and, within it, of the group's power snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time

from switchgear import gctune
from switchgear.api.schemas import iso
from switchgear.core.ffr import BY_ID
from switchgear.core.model import Device, FirmwareCommand
from switchgear.core.ports import SimAction
from switchgear.ffr.service import FfrService
from switchgear.runtime import Runtime
from switchgear.settings import Settings

HEATER = {"type": "constant", "watts": 4500.0}
SATISFIED = {"type": "thermostat", "rated_watts": 4500.0, "temperature_c": 60.0}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--controllers", type=int, default=10_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="switchgear-ffr-report-")
    rt = await Runtime.start(Settings(database_url=f"sqlite:///{tmp}/ffr.db", speed=0))
    try:
        svc = await FfrService.start(rt)
        account = await rt.auth.create_account("ffr@example.com", "FFR", "a long password")
        ids = []
        t0 = time.perf_counter()
        for i in range(args.controllers):
            serial = f"PC-FFRREPORT{i:06d}-001"
            device = Device(0, account.id, serial, "power-controller-v10", "wh", rt.clock.now())
            d = await rt.add_device(device)
            load = SATISFIED if i % 10 == 9 else HEATER
            await rt.link.simulate(d.id, SimAction("load", channel=0, load=load))
            ids.append(d.id)
        added_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = await svc.create_group(account.id, "fleet", BY_ID["ercot-ffr"], 40_000.0, ids)
        enrol_s = time.perf_counter() - t0
        for i in ids[::100]:  # a tenant's own setting: too many grid cycles
            await rt.engine.command(
                account.id, i, FirmwareCommand("pc.config", {"ffr": {"periods": 30}})
            )
        # the controllers booted together: their 900 s `update` statuses would all fall on
        # the window's end; half a period on, they fall mid-window as in a real fleet
        await rt.advance(450)
        t0 = time.perf_counter()
        snapshot = [svc.power_w(i) for i in ids]
        snapshot_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await rt.set_grid(account.id, 59.8, None, duration_s=60)
        step_s = time.perf_counter() - t0
        await svc.settled()  # the event's id claimed in the store
        ev = svc.open[g.id]
        await rt.advance(900 - 0.1)
        t0 = time.perf_counter()
        await rt.advance(0.2)  # across the window's end: judge, store the report
        await svc.settled()
        close_s = time.perf_counter() - t0
        closed = await svc.event(account.id, ev.id)
        t0 = time.perf_counter()
        rows = [f"{iso(t)},{f:.3f},{kw:.3f}" for t, f, kw in FfrService.evidence(closed)]
        evidence_s = time.perf_counter() - t0
        report = closed.report
        result = {
            "controllers": args.controllers,
            "enrolled": len(g.device_ids),
            "compliant": report["compliant"],
            "delivered_kw": report["delivered_kw"],
            "reasons": len(report["reasons"]),  # type: ignore[arg-type]
            "window_close_to_durable_report_ms": round(close_s * 1000, 1),
            "evidence_csv_rows": len(rows),
            "evidence_csv_ms": round(evidence_s * 1000, 1),
            "grid_step_ms": round(step_s * 1000, 1),
            "of_which_power_snapshot_ms": round(snapshot_s * 1000, 1),
            "snapshot_kw": round(sum(snapshot) / 1000, 1),
            "enrol_s": round(enrol_s, 1),
            "add_devices_s": round(added_s, 1),
        }
        print(json.dumps(result, indent=2))
    finally:
        await rt.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    with gctune.tuned():
        asyncio.run(main())
