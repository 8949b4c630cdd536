"""The estate every reliability test runs against: the demo's two accounts and fleets.

Seeded exactly as `switchgear demo` seeds them (every family, every dialect's credentials
for both accounts), on a manual clock, with the meters' rate limit off so that fuzzed
requests reach the parsers. In memory by default; a module that marks its tests with
`ON_EVERY_STORE` runs each on the in-memory store and on a SQLite file, the store users
get (what SQLite refuses, a 65-bit integer say, memory takes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchgear.app import create_app
from switchgear.demo import credentials, seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import empty_schema

BASE = "http://test"


@dataclass
class Estate:
    rt: Runtime
    client: httpx.AsyncClient
    creds: dict[str, Any]  # the credentials file's content

    def section(self, dialect: str, other: bool = False) -> dict[str, Any]:
        return dict(self.creds["other_account"][dialect] if other else self.creds[dialect])

    def fingerprint(self) -> str:
        """Everything a bad request must not change: relays, settings, configuration."""
        state = []
        for d in sorted(self.rt.engine.all_devices(), key=lambda d: d.id):
            s = self.rt.engine.shadow(d.id)
            extra = {k: v for k, v in s.extra.items() if k in ("config", "ekm")}
            if "ekm" in extra:
                extra["ekm"] = {k: v for k, v in extra["ekm"].items() if k != "tariff_mark"}
            state.append([d.id, d.serial, [(c.on, c.settings, c.toggle_at) for c in s.channels],
                          extra])  # fmt: skip
        creds = sorted((c.id, c.revoked_at) for a in (1, 2) for c in self.rt.auth.list(a))
        return json.dumps([state, creds, len(self.rt.engine)], default=str, sort_keys=True)


STORES = ("memory", "sqlite")


def database_url(store: str, folder: Path) -> str:
    return "memory://" if store == "memory" else f"sqlite:///{folder / 'estate.db'}"


ON_EVERY_STORE = pytest.mark.parametrize("estate", STORES, indirect=True)
# and on PostgreSQL (the scale-out store), for what only it refuses: a NUL in text, say
ON_POSTGRES_TOO = pytest.mark.parametrize(
    "estate", [*STORES, pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
async def estate(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Estate]:
    store = getattr(request, "param", "memory")
    if store == "postgresql":
        url = request.getfixturevalue("pg_database")
        await empty_schema(url)
    else:
        url = database_url(store, tmp_path)
    settings = Settings(
        database_url=url,
        speed=0,
        secret_key="test-secret-key-of-at-least-32-bytes",
        meterhttp_rate_limit=False,
        push3_gateway_delay_s=0.2,
        registrations_per_hour=100_000,  # every damaged registration reaches validation
        meter_networks=["192.0.2.0/24"],  # the documentation network the meter cases use
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        demo = await seed(rt)
        creds = await credentials(rt, demo, BASE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Estate(rt, client, creds)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many bad-input cases each face got (docs/reliability.md records these)."""
    from tests.reliability.test_fuzz import RAN

    if RAN:
        faces = ", ".join(f"{face} {n}" for face, n in sorted(RAN.items()))
        terminalreporter.write_line(f"bad-input cases: {sum(RAN.values())} ({faces})")


async def push3_answers(e: Estate, sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers to one sendCommand that reached its channel so far."""
    import asyncio

    from switchgear.dialects.push3.channels import hub

    for _ in range(20):  # the bus hands answers to the channel hub in its own task
        await asyncio.sleep(0)
    ch = hub(e.rt).get(sent["response_channel_id"])
    return [dict(m) for m in ch.backlog if m["msg_id"] == sent["msg_id"]]
