"""kill -9 during an FFR event: the restarted server resumes it and says what it missed."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.e2e.proc import start_demo

pytestmark = pytest.mark.e2e


def wait_until(ok: Callable[[], bool], timeout_s: float) -> None:
    """Poll the wall clock until `ok` (a precondition outside the server, not a result)."""
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "the wall clock did not get there"
        time.sleep(0.05)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_an_event_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    demo = start_demo(tmp_path, db)
    h = {"Authorization": f"Bearer {demo.credentials['account']['token']}"}  # the operator
    try:
        async with httpx.AsyncClient(base_url=demo.base_url, headers=h, timeout=30) as client:
            found = await client.get("/api/v1/devices", params={"family": "load_controller"})
            ids = [d["id"] for d in found.json()]
            body = {"name": "g", "programme": "ercot-ffr", "contracted_kw": 1, "device_ids": ids}
            group = (await client.post("/api/v1/ffr/groups", json=body)).json()
            r = await client.post(f"/api/v1/ffr/groups/{group['id']}/prequalification")
            assert r.status_code == 202, r.text
            test = r.json()
            r = await client.post("/api/v1/sim/clock/advance", json={"seconds": 2})
            assert r.status_code == 200, r.text
            killed_at = (await client.get("/api/v1/sim/clock")).json()["epoch"]
        demo.kill()  # no shutdown hook runs: what was committed is all there is
    finally:
        demo.stop()
    # A manual clock restarts at the later of its stored time and the wall clock's: let the
    # wall clock pass the time of the kill, so the restart lies after it (a gap unobserved)
    wait_until(lambda: time.time() > killed_at + 0.5, timeout_s=10)
    again = start_demo(tmp_path, db)
    try:
        async with httpx.AsyncClient(base_url=again.base_url, headers=h, timeout=30) as client:
            listed = (await client.get("/api/v1/ffr/events")).json()
            assert [(e["id"], e.get("open")) for e in listed] == [(test["event_id"], True)]
            r = await client.post("/api/v1/sim/clock/advance", json={"seconds": 900})
            assert r.status_code == 200, r.text
            ev = (await client.get(f"/api/v1/ffr/events/{test['event_id']}")).json()
            assert "open" not in ev
            [gap] = ev["evidence"]["unobserved"]
            started = _epoch(ev["started_at"])
            # the last heartbeat before the kill: 2 s into the event
            assert abs(_epoch(gap["from"]) - (started + 2)) < 0.001
            assert _epoch(gap["to"]) > _epoch(gap["from"])
            r = await client.get(f"/api/v1/ffr/events/{test['event_id']}/evidence.csv")
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) == 9101
            assert rows[119]["observed"] == "true"  # 1.9 s after the crossing
            assert rows[120]["observed"] == "false"  # 2.0 s: nobody saw from here
            assert rows[-1]["observed"] == "true"
    finally:
        again.stop()
