"""The demo's power controllers as a client of the Automate Green API sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from switchgear.app import create_app
from switchgear.demo import credentials, seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings

DAY = 86_400.0


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Runtime, httpx.AsyncClient, dict[str, Any]]]:
    settings = Settings(database_url="memory://", speed=0,
                        secret_key="test-secret-key-of-at-least-32-bytes")  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        creds = await credentials(rt, await seed(rt), "http://test")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield rt, client, creds


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_the_flowmeter_controller_measures_the_morning_draw(
    demo: tuple[Runtime, httpx.AsyncClient, dict[str, Any]],
) -> None:
    rt, client, creds = demo
    section = creds["powercontroller"]
    serials = section["serials"]
    with_meter = section["device_ids"][serials.index(next(s for s in serials if s[-4:] == "-002"))]
    now = rt.clock.now()
    morning = now - now % DAY + 6 * 3600  # 06:00 UTC, today or tomorrow
    if morning < now:
        morning += DAY
    operator = {"Authorization": f"Bearer {creds['account']['token']}"}
    r = await client.post(
        "/api/v1/sim/clock/advance", json={"seconds": morning + 7200 - now}, headers=operator
    )
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {section['token']}"}
    flows: dict[str, list[Any]] = {}
    for pc_id in section["device_ids"]:
        window = {"date[start]": _iso(morning), "date[end]": _iso(morning + 7200)}
        r = await client.get("/v1/statuses", headers=h, params={"device": pc_id, **window})
        assert r.status_code == 200, r.text
        updates = [s for s in r.json()["statuses"] if s["type"] == "update"]
        flows[pc_id] = [s["info"]["flow"] for s in updates]
    assert max(flows[with_meter]) > 1  # litres per minute while the household draws
    assert all(f == 0 for f in flows[with_meter][:2])  # 06:00-06:30: nothing drawn
    others = [f for pc_id, fs in flows.items() if pc_id != with_meter for f in fs]
    assert others and all(f is None for f in others)  # no flowmeter: flow null
