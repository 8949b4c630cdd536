"""`switchgear serve --link mqtt://...` as a user runs it: adopt and switch a Shelly by CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from switchgear.cli.main import app
from tests.api.test_mqtt_devices import BROKER, Gen1, require_broker, until
from tests.e2e.proc import START_TIMEOUT_S, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt]

runner = CliRunner()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server on a fresh database with one account: (base URL, its native token)."""
    require_broker()
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    made = runner.invoke(app, ["users", "add", "owner@example.com", "--password",
                               "a long password", "--database-url", db, "--token"])  # fmt: skip
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchgear", "serve", "--port", str(port), "--speed", "0",
         "--database-url", db, "--link", f"mqtt://{BROKER[0]}:{BROKER[1]}",
         "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.05)
    try:
        yield base, token
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


async def test_devices_adopt_then_on_through_the_cli(
    served: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, token = served
    monkeypatch.setenv("SWITCHGEAR_TOKEN", token)
    async with Gen1() as plug:

        def sg(*args: str) -> tuple[int, str, str]:
            r = runner.invoke(app, [*args, "--url", base])
            return r.exit_code, r.stdout, r.stderr

        code, out, err = await asyncio.to_thread(
            sg, "devices", "adopt", "shelly-gen1", plug.mqtt_id, "--name", "kettle", "--json"
        )
        assert code == 0, err
        made = json.loads(out)
        assert made["model"] == "SHPLG-1" and made["name"] == "kettle"

        async def online() -> bool:
            code, out, _ = await asyncio.to_thread(sg, "devices", "show", str(made["id"]), "--json")
            return code == 0 and bool(json.loads(out)["online"])

        await until(online)
        code, out, err = await asyncio.to_thread(sg, "devices", "on", str(made["id"]))
        assert code == 0, err
        assert "done" in out and plug.on
        code, _, err = await asyncio.to_thread(sg, "devices", "adopt", "shelly-gen1", plug.mqtt_id)
        assert code == 1 and "adopted already" in err and "409" in err
