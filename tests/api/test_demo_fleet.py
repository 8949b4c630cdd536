"""`demo --fleet-size N`: N simulated devices over the families, the same on a restart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from switchgear.app import create_app
from switchgear.demo import seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings

SIZE = 120


async def _fleet(db: Path, size: int) -> list[dict[str, Any]]:
    """Start a demo on the database; the first account's devices as the API lists them."""
    settings = Settings(database_url=f"sqlite:///{db}", speed=0, demo=True,
                        demo_fleet_size=size)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        demo = await seed(rt)
        token = demo["accounts"][0]["token"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
            other = demo["accounts"][1]["token"]
            theirs = await client.get(
                "/api/v1/devices", headers={"Authorization": f"Bearer {other}"}
            )
            return [*r.json(), *theirs.json()]


async def test_a_fleet_size_gives_that_many_devices_over_every_family(tmp_path: Path) -> None:
    devices = await _fleet(tmp_path / "demo.db", SIZE)
    assert len(devices) == SIZE
    families = Counter(d["family"] for d in devices)
    assert set(families) == {"plug", "strip", "load_controller", "meter", "gateway"}
    assert min(families[f] for f in ("plug", "strip", "load_controller", "meter")) >= 20
    # a restart resumes the same fleet; a larger size tops it up
    again = await _fleet(tmp_path / "demo.db", SIZE)
    assert {d["serial"] for d in again} == {d["serial"] for d in devices}
    more = await _fleet(tmp_path / "demo.db", SIZE + 5)
    assert len(more) == SIZE + 5


async def test_without_a_size_the_demo_is_the_small_fleet(tmp_path: Path) -> None:
    devices = await _fleet(tmp_path / "demo.db", 0)
    assert 0 < len(devices) < 30
    assert not any("fleet" in d["tags"] for d in devices)
