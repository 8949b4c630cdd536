"""schemathesis against the native API's own OpenAPI document, over real HTTP.

Every operation is called with generated requests (valid and invalid) and the demo
account's token: no answer may be a server error, every answer's status must be one the
operation declares (so a generated client knows it), and answers must match their
documented schema. The interactive page at /api/docs loads nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from switchgear.app import create_app
from switchgear.demo import credentials, seed
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.reliability.conftest import STORES, database_url

# The event stream never ends; meters would be polled at generated addresses; a generated
# clock jump of up to ten years runs every timer of the fleet on the way (minutes of work).
SKIP = ("/api/v1/events", "/api/v1/meters", "/api/v1/sim/clock/advance")
# a bulk import's JSON lines body is text, as its CSV one is
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


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
    case.validate_response(
        response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )


def test_no_operation_advertises_an_answer_the_server_never_sends() -> None:
    for path, operations in _DOC["paths"].items():
        for method, op in operations.items():
            declared = set(op["responses"])
            # 422: a device refused the command, or an FFR group's selection names no device
            refusable = "/switch" in path or "/settings" in path or path == "/api/v1/ffr/groups"
            assert "422" not in declared or refusable, (method, path)
            if op.get("security"):
                assert "401" in declared, (method, path)
            if "{" in path:
                assert "404" in declared, (method, path)
            for status in (s for s in declared if not s.startswith("2")):  # errors only
                content = op["responses"][status]["content"]
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }, (method, path, status)


def test_api_docs_page_works_with_no_internet(live: Live) -> None:
    with httpx.Client(base_url=live.base) as client:
        page = client.get("/docs", follow_redirects=True)
        assert page.status_code == 200 and page.url.path == "/api/docs"
        assert "text/html" in page.headers["content-type"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
        assert "//" not in " ".join(assets), assets  # nothing from another host
        for asset in assets:
            answer = client.get(asset)
            assert answer.status_code == 200 and len(answer.content) > 100, asset
        assert "/api/openapi.json" in page.text
        assert client.get("/api/openapi.json").json()["info"]["title"] == "switchgear"
