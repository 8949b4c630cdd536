"""`switchgear serve --link mqtt://...` as a user runs it: adopt and switch a Shelly by CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from switchgear.cli.main import app
from tests.api.test_mqtt_devices import BROKER, Gen1, require_broker, until
from tests.e2e.proc import START_TIMEOUT_S, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt]

runner = CliRunner()


def user(db: str, email: str) -> str:
    """A new account on the database; its native token."""
    made = runner.invoke(app, ["users", "add", email, "--password", "a long password",
                               "--database-url", db, "--token"])  # fmt: skip
    assert made.exit_code == 0, made.output
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server on a fresh database with two accounts: (base URL, the first's native token);
    the second's token is in `tmp_path / "other.token"`."""
    require_broker()
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    token = user(db, "owner@example.com")
    (tmp_path / "other.token").write_text(user(db, "other@example.com"))
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


async def test_the_cli_on_an_adopted_gen1_bad_input_timed_switch_offline_and_isolation(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base, token = served
    other = (tmp_path / "other.token").read_text()
    async with Gen1() as plug:

        def sg(*args: str, as_token: str = token) -> tuple[int, str, str]:
            r = runner.invoke(app, [*args, "--url", base], env={"SWITCHGEAR_TOKEN": as_token})
            return r.exit_code, r.stdout, r.stderr

        async def run(*args: str, as_token: str = token) -> tuple[int, str, str]:
            return await asyncio.to_thread(sg, *args, as_token=as_token)

        # bad input: one line naming the field, exit 1 (a missing argument: usage, exit 2)
        code, _, err = await run("devices", "adopt", "shelly-gen3", plug.mqtt_id)
        assert code == 1 and "protocol" in err and "(HTTP 400)" in err, err
        code, _, err = await run("devices", "adopt", "shelly-gen1", "shellies/#")
        assert code == 1 and "mqtt_id" in err and "(HTTP 400)" in err, err
        code, _, err = await run("devices", "adopt", "shelly-gen1")
        assert code == 2 and "Missing argument 'mqtt_id'" in err, err
        code, out, err = await run("devices", "adopt", "shelly-gen1", plug.mqtt_id, "--json")
        assert code == 0, err
        dev = str(json.loads(out)["id"])

        async def shown() -> dict[str, Any]:
            code, out, err = await run("devices", "show", dev, "--json")
            assert code == 0, err
            return dict(json.loads(out))

        await until(lambda: _online(shown))
        # the other account: the answers of a device that does not exist
        for args in (("devices", "show"), ("devices", "on"), ("history",)):
            theirs = await run(*args, dev, as_token=other)
            missing = await run(*args, "999999", as_token=other)
            assert theirs[0] == 1 and "device not found (HTTP 404)" in theirs[2], theirs
            assert theirs == missing
        code, out, _ = await run("devices", "list", "--json", as_token=other)
        assert code == 0 and json.loads(out) == []
        # a timed switch: Gen1 has none over MQTT, the server's timer flips it back
        code, out, err = await run("devices", "on", dev, "--duration", "60")
        assert code == 0 and "done" in out, err
        assert plug.on and (await shown())["channels"][0]["toggle_at"]
        code, out, err = await run("sim", "advance", "60")
        assert code == 0, err
        await until(lambda: not plug.on)
        code, out, err = await run("history", dev, "--json")
        relays = [(s["reason"], s["data"]["on"]) for s in json.loads(out) if s["kind"] == "relay"]
        assert relays[-2:] == [("api", True), ("auto", False)]
        # gone (its last will): offline, and a switch gets the offline answer
        await plug.say("online", "false")
        await until(lambda: _not(_online(shown)))
        code, _, err = await run("devices", "on", dev)
        assert code == 1 and "(HTTP 503)" in err and "offline" in err, err
        await plug.say("online", "true")
        await until(lambda: _online(shown))
        code, out, err = await run("history", dev, "--json")
        kinds = [(s["kind"], s["reason"]) for s in json.loads(out)]
        assert kinds[-2:] == [("connection", "offline"), ("connection", "online")], kinds


async def _online(shown: Callable[[], Awaitable[dict[str, Any]]]) -> bool:
    return bool((await shown())["online"])


async def _not(x: Awaitable[bool]) -> bool:
    return not await x
