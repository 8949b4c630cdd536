"""What an operator's tooling sees of a real server: metrics, health, logs, a taken port."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proc import Demo, free_port, start_demo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("ops")
    d = start_demo(tmp, tmp / "demo.db", extra=["--log-level", "info"])
    try:
        yield d
    finally:
        d.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one series of an exposition text (KeyError when it is absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                return float(value)
    raise KeyError(f"{name} {labels}")


def test_metrics_are_the_operators_alone(demo: Demo) -> None:
    c = demo.credentials
    with httpx.Client(base_url=c["base_url"], timeout=30) as client:
        assert client.get("/metrics").status_code == 401
        tenant = client.get("/metrics", headers=_bearer(c["other_account"]["token"]))
        assert tenant.status_code == 403
        assert "switchgear_" not in tenant.text


def test_metrics_count_requests_commands_devices_and_the_process(demo: Demo) -> None:
    c = demo.credentials
    op = _bearer(c["account"]["token"])
    with httpx.Client(base_url=c["base_url"], timeout=30) as client:
        before = client.get("/metrics", headers=op).text
        done_before = _sample(before, "switchgear_commands_total", outcome="done")
        plug = client.get("/api/v1/devices", params={"family": "plug"}, headers=op).json()[0]
        r = client.post(
            f"/api/v1/devices/{plug['id']}/channels/0/switch", json={"action": "toggle"}, headers=op
        )
        assert r.status_code == 200
        sp = c["smartplug"]
        fetch = client.post(
            "/provider/fetch",
            json={"serial_number": sp["serials"][0]},
            headers=_bearer(sp["access_token"]),
        )
        assert fetch.status_code == 200
        page = client.get("/metrics", headers=op)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = page.text
    assert _sample(text, "switchgear_commands_total", outcome="done") == done_before + 1
    assert _sample(
        text, "switchgear_http_request_duration_seconds_count",
        face="smartplug", route="/provider/fetch", method="POST", status="200",
    ) >= 1  # fmt: skip
    assert _sample(
        text, "switchgear_http_request_duration_seconds_count",
        face="native", route="/api/v1/devices/{device_id}/channels/{channel}/switch",
        status="200",
    ) >= 1  # fmt: skip
    assert _sample(text, "switchgear_devices", family="plug", state="online") >= 1
    assert _sample(text, "switchgear_group_commit_records_count") >= 1
    assert _sample(text, "switchgear_group_commit_seconds_count") >= 1
    assert _sample(text, "switchgear_open_streams") == 0
    assert _sample(text, "process_resident_memory_bytes") > 0


def test_health_answers_without_credentials_and_tells_nothing(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base_url, timeout=30) as client:
        alive = client.get("/healthz")
        ready = client.get("/readyz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert "server" not in alive.headers


def test_each_request_has_an_id_in_its_answer_and_its_log_line(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base_url, timeout=30) as client:
        mine = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
        fresh = client.get("/no/such/path")
        hostile = client.get("/healthz", headers={"X-Request-ID": 'x" injected=1'})
    assert mine.headers["x-request-id"] == "lb-7f3a.42"
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["x-request-id"])
    log = demo.log_once(fresh.headers["x-request-id"])
    assert "[lb-7f3a.42] GET /healthz 200" in log
    assert f"[{fresh.headers['x-request-id']}] GET /no/such/path 404" in log


def test_start_up_is_quiet_at_the_default_level(demo: Demo) -> None:
    log = demo.log_once("switchgear listening on")
    before_banner = log.split("switchgear listening on")[0].splitlines()
    assert len(before_banner) <= 6, before_banner
    assert not any("alembic" in line or "credential" in line for line in before_banner)


def test_a_taken_port_is_one_clear_line_and_no_database(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "switchgear", "serve", "--port", str(port),
             "--database-url", f"sqlite:///{db}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert str(port) in lines[0] and "--port" in lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert not db.exists()


def test_a_free_port_still_serves(tmp_path: Path) -> None:
    """The bind-first path hands uvicorn a working socket (and --port 0 its real port)."""
    d = start_demo(tmp_path, tmp_path / "demo.db", port=free_port())
    try:
        assert httpx.get(f"{d.base_url}/healthz", timeout=30).status_code == 200
    finally:
        d.stop()


def test_the_push3_gateway_is_online_from_the_start(demo: Demo) -> None:
    c = demo.credentials
    h = _bearer(c["account"]["token"])
    with httpx.Client(base_url=c["base_url"], timeout=30) as client:
        gateways = client.get("/api/v1/devices", params={"family": "gateway"}, headers=h).json()
    assert gateways and all(g["online"] for g in gateways)


async def test_events_use_the_rest_apis_formats(demo: Demo) -> None:
    c = demo.credentials
    h = _bearer(c["account"]["token"])
    async with httpx.AsyncClient(base_url=c["base_url"], headers=h, timeout=30) as client:
        meter = (await client.get("/api/v1/devices", params={"family": "meter"})).json()[0]
        did = meter["id"]
        events: list[dict[str, Any]] = []
        async with client.stream("GET", f"/api/v1/events?device={did}") as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(": connected")
            r = await client.post(
                f"/api/v1/devices/{did}/channels/0/switch", json={"action": "toggle"}
            )
            assert r.status_code == 200
            async for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["kind"] == "relay":
                        break
        shown = (await client.get(f"/api/v1/devices/{did}")).json()
    event = events[-1]
    assert datetime.fromisoformat(event["ts"]) and event["ts"].endswith("Z")
    assert event["ts"] == shown["reported_at"]
    assert event["state"]["channels"] == shown["channels"]
    assert event["state"]["meters"] == shown["meters"]  # the same rounding as the REST API
