"""A fresh demo has a week of history per device, once: energy climbs to each register."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from switchgear.app import create_app
from switchgear.demo import seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings

WEEK = 7 * 86_400


async def _history(db: Path) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """Start a demo on the database: its devices and each one's history until now."""
    app = create_app(Settings(database_url=f"sqlite:///{db}", speed=0, demo=True))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        demo = await seed(rt)
        transport = httpx.ASGITransport(app=app)
        devices: dict[int, dict[str, Any]] = {}
        statuses: dict[int, list[dict[str, Any]]] = {}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for account in demo["accounts"]:
                h = {"Authorization": f"Bearer {account['token']}"}
                for d in (await client.get("/api/v1/devices", headers=h)).json():
                    devices[d["id"]] = d
                    q = {"start": "2000-01-01T00:00:00Z", "limit": 5000}
                    r = await client.get(f"/api/v1/devices/{d['id']}/history", params=q, headers=h)
                    assert r.status_code == 200, r.text
                    statuses[d["id"]] = r.json()["statuses"]
        return devices, statuses


def _ts(s: dict[str, Any]) -> float:
    return datetime.fromisoformat(s["ts"]).timestamp()


async def test_a_fresh_demo_has_a_week_of_history_ending_at_its_registers(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    devices, statuses = await _history(tmp_path / "demo.db")
    assert time.perf_counter() - t0 < 30  # the whole start; docs/performance.md has the figure
    metered = [d for d in devices.values() if d["meters"]]
    assert len(metered) >= 14  # both accounts' fleets but the gateways
    for d in metered:
        updates = [s for s in statuses[d["id"]] if s["kind"] == "update"]
        first, last = _ts(updates[0]), _ts(updates[-1])
        assert last - first >= WEEK - 900, d["name"]  # a week at the 15-minute cadence
        assert len(updates) >= WEEK // 900, d["name"]
        if d["family"] == "load_controller":  # per-period Wh, the water's temperature too
            assert all(u["data"]["power"] >= 0 for u in updates)
            assert sum(u["data"]["power"] for u in updates) > 10_000, d["name"]  # a week of heating
            temps = [u["data"]["water_temperature"] for u in updates]
            assert 40 < min(temps) < max(temps) <= 60.01, d["name"]
            continue
        energy = [u["data"]["energy_wh"] for u in updates]
        assert energy == sorted(energy), d["name"]  # registers never go back
        register = sum(m["energy_wh"] for m in d["meters"])
        assert abs(energy[-1] - register) < 0.01, d["name"]
        if d["model"] in ("D103", "OMNIMETER-V4"):  # each phase, summing to the device's
            phases = updates[-1]["data"]["phases"]
            assert len(phases) == 3
            assert abs(sum(p["power"] for p in phases) - updates[-1]["data"]["power"]) < 0.1
            for i, m in enumerate(d["meters"]):
                assert abs(phases[i]["energy_wh"] - m["energy_wh"]) < 0.01
    # a restart resumes: the week is not written again
    _, later = await _history(tmp_path / "demo.db")

    def updates(history: dict[int, list[dict[str, Any]]]) -> dict[int, list[str]]:
        return {i: [s["id"] for s in ss if s["kind"] == "update"] for i, ss in history.items()}

    assert updates(later) == updates(statuses)  # a reboot reports its relays, no readings
