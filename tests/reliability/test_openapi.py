"""schemathesis against the native API's own OpenAPI document, over real HTTP.

Every operation is called with generated requests (valid and invalid) and the demo
account's token: no answer may be a server error, and successful answers must match
their documented schema.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from switchgear.app import create_app
from switchgear.demo import credentials, seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.reliability.conftest import STORES, database_url

# The event stream never ends; meters would be polled at generated addresses; a generated
# clock jump of up to ten years runs every timer of the fleet on the way (minutes of work).
SKIP = ("/api/v1/events", "/api/v1/meters", "/api/v1/sim/clock/advance")


@dataclass
class Live:
    base: str = ""
    creds: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds['account']['token']}"}


@pytest.fixture(scope="module", params=STORES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """The app under uvicorn in a thread of its own, seeded like the demo, on each store."""
    found = Live()

    async def on_start(rt: Runtime) -> None:
        demo = await seed(rt)
        found.creds = await credentials(rt, demo, "")

    settings_ = Settings(
        database_url=database_url(request.param, tmp_path_factory.mktemp("openapi")),
        speed=0,
        meterhttp_rate_limit=False,
        secret_key="test-secret-key-of-at-least-32-bytes",
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings_, on_start=on_start),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    found.base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield found
    finally:
        server.should_exit = True
        thread.join(10)


# The document is static: read it from the app object (no server needed to collect).
_DOC = create_app(Settings(database_url="memory://")).state.api.openapi()
schema = schemathesis.openapi.from_dict(_DOC).exclude(path_regex="|".join(SKIP))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_native_api_never_fails_on_generated_requests(case: Any, live: Live) -> None:
    response = case.call(base_url=live.base, headers=live.auth)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
