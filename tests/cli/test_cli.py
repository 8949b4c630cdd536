"""The `switchgear` CLI against a real demo server, as a user runs it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from switchgear.cli.client import CliError
from switchgear.cli.errors import handled
from switchgear.cli.main import app
from tests.e2e.proc import Demo, running_demo

pytestmark = pytest.mark.e2e

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("cli")) as d:
        yield d


def sg(demo: Demo, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--credentials-file", str(demo.credentials_path)])
    return result.exit_code, result.stdout, result.stderr


def plug_id(demo: Demo) -> int:
    code, out, _ = sg(demo, "devices", "list", "--family", "plug", "--json")
    assert code == 0
    return int(json.loads(out)[0]["id"])


def test_devices_list_shows_the_accounts_fleet(demo: Demo) -> None:
    code, out, _ = sg(demo, "devices", "list")
    assert code == 0
    for serial in demo.credentials["smartplug"]["serials"]:
        assert serial in out
    other = demo.credentials["other_account"]["smartplug"]["serials"][0]
    assert other not in out
    code, out, _ = sg(demo, "devices", "list", "--account", "other")
    assert other in out


def test_on_then_show_and_delayed_switch_with_the_manual_clock(demo: Demo) -> None:
    pid = plug_id(demo)
    code, out, _ = sg(demo, "devices", "off", str(pid))
    assert code == 0 and "done" in out
    code, out, _ = sg(demo, "devices", "on", str(pid), "--delay", "60")
    assert code == 0
    code, out, _ = sg(demo, "devices", "show", str(pid), "--json")
    assert json.loads(out)["channels"][0]["on"] is False
    code, out, _ = sg(demo, "sim", "advance", "60")
    assert code == 0 and "clock now" in out
    code, out, _ = sg(demo, "devices", "show", str(pid), "--json")
    assert json.loads(out)["channels"][0]["on"] is True
    code, out, _ = sg(demo, "history", str(pid), "--json", "--all")
    assert any(s["reason"] == "timer" and s["kind"] == "relay" for s in json.loads(out))
    code, out, _ = sg(demo, "devices", "show", str(pid))
    assert code == 0 and "channels" in out and "meters" in out


def test_a_meter_with_its_relay_off_shows_zero_not_minus_zero(demo: Demo) -> None:
    pid = plug_id(demo)
    code, out, _ = sg(demo, "devices", "off", str(pid))
    assert code == 0
    code, out, _ = sg(demo, "devices", "show", str(pid), "--json")
    assert code == 0 and json.loads(out)["meters"] and "-0.0" not in out
    code, out, _ = sg(demo, "devices", "show", str(pid))
    assert code == 0 and "rev W" in out and "-0.0" not in out


def test_errors_are_one_line_on_stderr_and_exit_1(demo: Demo) -> None:
    code, _, err = sg(demo, "devices", "show", "999999")
    assert code == 1 and "error: device not found (HTTP 404)" in err and "Traceback" not in err
    code, _, err = sg(demo, "devices", "on", str(plug_id(demo)), "--delay", "-5")
    assert code == 1 and "delay" in err
    result = runner.invoke(app, ["devices", "list", "--url", "http://127.0.0.1:1",
                                 "--credentials-file", "/nonexistent.json"])  # fmt: skip
    assert result.exit_code == 1 and "no switchgear server answers" in result.stderr


def test_sim_offline_online_and_power_cycle(demo: Demo) -> None:
    pid = plug_id(demo)
    assert sg(demo, "sim", "offline", str(pid))[0] == 0
    code, _, err = sg(demo, "devices", "on", str(pid))
    assert code == 1 and "offline" in err
    assert sg(demo, "sim", "online", str(pid))[0] == 0
    assert sg(demo, "sim", "load", str(pid), "--watts", "250")[0] == 0
    assert sg(demo, "sim", "power-cycle", str(pid))[0] == 0
    assert sg(demo, "sim", "grid", "--frequency", "49.8")[0] == 0


def test_tokens_create_list_revoke(demo: Demo) -> None:
    c = demo.credentials
    code, out, _ = sg(demo, "tokens", "create", "--email", c["account"]["email"],
                      "--password", c["account"]["password"], "--json")  # fmt: skip
    assert code == 0
    new = json.loads(out)
    code, out, _ = sg(demo, "tokens", "list")
    assert new["id"] in out and new["token"] not in out
    assert sg(demo, "tokens", "revoke", new["id"])[0] == 0
    r = httpx.get(
        f"{demo.base_url}/api/v1/devices", headers={"Authorization": f"Bearer {new['token']}"}
    )
    assert r.status_code == 401


def test_users_add_then_sign_in_on_that_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    result = runner.invoke(app, ["users", "add", "new@example.com", "--password", "a long password",
                                 "--database-url", url, "--token"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "account 1 created" in result.stdout
    again = runner.invoke(app, ["users", "add", "new@example.com", "--password", "another one!",
                                "--database-url", url])  # fmt: skip
    assert again.exit_code == 1 and "exists" in again.stderr


def test_users_add_refuses_a_nul_in_the_email_or_name_and_creates_nothing(tmp_path: Path) -> None:
    # PostgreSQL keeps no NUL in text (a prompt or a script can pass one; argv cannot)
    url = f"sqlite:///{tmp_path / 'users.db'}"
    for args in (["ann\x00@example.com"], ["ann@example.com", "--name", "Ann\x00"]):
        result = runner.invoke(app, ["users", "add", *args, "--password", "a long password",
                                     "--database-url", url])  # fmt: skip
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ") and "NUL" in result.stderr, result.stderr
    made = runner.invoke(app, ["users", "add", "ann@example.com", "--password", "a long password",
                               "--database-url", url])  # fmt: skip
    assert made.exit_code == 0 and "account 1 created" in made.stdout, made.output


def test_credentials_create_a_smartplug_client_that_logs_in(demo: Demo) -> None:
    code, out, _ = sg(demo, "credentials", "create", "smartplug.client", "--json")
    assert code == 0
    client = json.loads(out)
    c = demo.credentials
    r = httpx.post(f"{demo.base_url}/v1/auth/login", json={
        "client_id": client["client_id"], "client_secret": client["client_secret"],
        "username": c["account"]["email"], "password": c["account"]["password"]})  # fmt: skip
    assert r.status_code == 200
    code, out, _ = sg(demo, "credentials", "list")
    assert client["client_id"] in out and client["client_secret"] not in out
    assert sg(demo, "credentials", "revoke", client["client_id"])[0] == 0
    code, _, err = sg(demo, "credentials", "create", "bogus.kind")
    assert code == 1 and "kind must be one of" in err


def test_sim_frequency_event_trips_an_ffr_controller_and_it_returns(demo: Demo) -> None:
    pc = demo.credentials["powercontroller"]
    h = {"Authorization": f"Bearer {pc['token']}"}
    with httpx.Client(base_url=demo.base_url, headers=h) as client:
        device = pc["device_ids"][0]
        ffr = {"enable": True, "tripThreshold": 59.7, "returnThreshold": 59.8, "periods": 10,
               "delay": 10}  # fmt: skip
        assert client.put(f"/v1/devices/{device}", json={"info": {"ffr": ffr}}).status_code == 200
        assert client.post(f"/v1/devices/{device}/command",
                           json={"command": {"name": "on"}}).status_code == 200  # fmt: skip
        code, out, _ = sg(demo, "sim", "frequency", "--hz", "59.6", "--for", "30")
        assert code == 0 and "59.6 Hz for 30 s" in out
        assert sg(demo, "sim", "advance", "1")[0] == 0
        status = client.get(f"/v1/devices/{device}").json()["device"]["status"]["info"]
        assert status["on"] is False
        assert sg(demo, "sim", "advance", "40")[0] == 0
        status = client.get(f"/v1/devices/{device}").json()["device"]["status"]["info"]
        assert status["on"] is True


def test_devices_list_never_cuts_a_number_at_80_columns(demo: Demo) -> None:
    code, out, _ = sg(demo, "devices", "list", "--json")
    devices = json.loads(out)
    code, table, _ = sg(demo, "devices", "list")
    assert code == 0 and "…" not in table
    assert max(len(line) for line in table.splitlines()) <= 80
    for d in devices:
        row = next(line for line in table.splitlines() if d["serial"] in line)
        power = sum(m["power_w"] for m in d["meters"])
        assert row.split()[0] == str(d["id"]) and row.endswith(f"{power:.1f}"), row
    metered = max(devices, key=lambda d: len(d["meters"]))
    code, out, _ = sg(demo, "devices", "show", str(metered["id"]), "--json")
    shown = json.loads(out)
    code, table, _ = sg(demo, "devices", "show", str(metered["id"]))
    assert code == 0 and "…" not in table
    assert max(len(line) for line in table.splitlines()) <= 80
    for m in shown["meters"]:
        assert f"{m['energy_wh']:.1f}" in table and f"{m['voltage_v']:.1f}" in table


def test_tokens_and_credentials_lists_cut_nothing_at_80_columns(demo: Demo) -> None:
    assert sg(demo, "credentials", "create", "powercontroller.token")[0] == 0
    for listing, whole in (
        (("tokens", "list"), ("id",)),
        (("credentials", "list"), ("id", "kind")),
    ):
        code, out, _ = sg(demo, *listing, "--json")
        rows = json.loads(out)
        code, table, _ = sg(demo, *listing)
        assert code == 0 and "…" not in table, table
        assert max(len(line) for line in table.splitlines()) <= 80, table
        for row in rows:
            line = next(line for line in table.splitlines() if line.startswith(row["id"]))
            assert all(row[key] in line.split() for key in whole), (row, line)


def test_an_error_longer_than_the_terminal_is_still_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    detail = "url: the meter's address is outside the networks this server may poll"
    with pytest.raises(typer.Exit) as exit_, handled():
        raise CliError(f"{detail} (HTTP 400)")
    assert exit_.value.exit_code == 1
    assert capsys.readouterr().err == f"error: {detail} (HTTP 400)\n"


def test_every_listing_has_json_for_scripts(demo: Demo) -> None:
    pid = plug_id(demo)
    for args in (("devices", "list"), ("tokens", "list"), ("credentials", "list"),
                 ("history", str(pid)), ("events", "--device", str(pid))):  # fmt: skip
        code, out, err = sg(demo, *args, "--json")
        assert code == 0, (args, err)
        if args[0] == "events":
            [json.loads(line) for line in out.splitlines()]
        else:
            assert isinstance(json.loads(out), list), args


def test_shared_options_are_the_same_on_every_server_command() -> None:
    for args in (("devices", "list"), ("devices", "on"), ("sim", "advance"), ("tokens", "list"),
                 ("credentials", "revoke"), ("history",), ("events",)):  # fmt: skip
        out = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).stdout
        for option in ("--url", "--credentials-file", "--account"):
            assert option in out, (args, option)


def test_events_prints_recent_then_follows_live_events(demo: Demo) -> None:
    pid = plug_id(demo)
    assert sg(demo, "devices", "off", str(pid))[0] == 0
    code, out, _ = sg(demo, "events", "--device", str(pid), "--last", "1")
    assert code == 0 and f"device {pid} ch 0  relay/" in out and len(out.splitlines()) == 1

    result: list[tuple[int, str, str]] = []
    follow = threading.Thread(target=lambda: result.append(sg(
        demo, "events", "--device", str(pid), "--last", "0", "--follow", "--count", "1",
        "--json")))  # fmt: skip
    follow.start()
    token = demo.credentials["account"]["token"]
    path = f"{demo.base_url}/api/v1/devices/{pid}/channels/0/switch"
    deadline = time.monotonic() + 30
    action = "on"
    while follow.is_alive() and time.monotonic() < deadline:  # until the stream has one
        r = httpx.post(path, json={"action": action}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        action = "off" if action == "on" else "on"
        follow.join(0.2)
    assert not follow.is_alive(), "events --follow --count 1 did not end"
    code, out, err = result[0]
    assert code == 0, err
    event = json.loads(out.splitlines()[-1])
    assert event["device_id"] == pid and event["kind"] == "relay"


@pytest.mark.parametrize(
    ("option", "value"), [("--last", "-1"), ("--count", "-1"), ("--count", "0")]
)
def test_events_refuses_a_negative_last_or_count_naming_the_option(option: str, value: str) -> None:
    # refused before any server is asked: nothing answers at this address
    args = ["events", "--follow", option, value, "--url", "http://127.0.0.1:9"]
    result = runner.invoke(app, args, env={"SWITCHGEAR_TOKEN": "sg_unused"})
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.stderr and f"'{option}'" in result.stderr


def test_events_of_a_device_of_another_account_is_not_found(demo: Demo) -> None:
    code, _, err = sg(demo, "events", "--device", "999999", "--follow")
    assert code == 1 and "not found (HTTP 404)" in err


def test_devices_import_of_json_lines_follows_the_servers_job(demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "fleet.jsonl"
    rows = [
        {"serial": f"SPG-JSONL-{i:03d}", "model": "SHPLG-1", "tags": ["jsonl"]} for i in range(3)
    ]
    rows.append({"serial": "SPG-JSONL-X", "model": "SHPLG-1", "protocol": "shelly-gen1",
                 "address": "shellyplug-CLI001"})  # fmt: skip
    path.write_text("\n".join(map(json.dumps, rows)) + "\n")
    code, out, err = sg(demo, "devices", "import", str(path))
    assert code == 1  # the demo has no MQTT link: the Shelly row is refused by line
    assert "line 4: protocol: this server has no MQTT link" in out
    assert "3 imported, 0 already there, 1 refused (of 4 rows)" in out
    assert "imported" in err and "4/4" in err  # the progress read from the job
    code, out, _ = sg(demo, "devices", "list", "--tag", "jsonl", "--json")
    assert {d["serial"] for d in json.loads(out)} == {f"SPG-JSONL-{i:03d}" for i in range(3)}


def test_devices_import_reports_bad_lines_then_a_second_run_changes_nothing(
    demo: Demo, tmp_path: Path
) -> None:
    # more rows than one request carries: the file goes in parts, line numbers stay the file's
    rows = [f"SPG-CLI-{i:05d},SHPLG-1,plug {i},cli;bulk" for i in range(5_001)]
    path = tmp_path / "fleet.csv"
    path.write_text("\n".join(["serial,model,name,tags", *rows, "SPG-CLI-X,NOPE-1,bad,"]) + "\n")
    code, out, _ = sg(demo, "devices", "import", str(path))
    assert code == 1
    assert "line 5003: model: unknown model 'NOPE-1'" in out
    assert "5001 imported, 0 already there, 1 refused (of 5002 rows)" in out
    code, out, _ = sg(demo, "devices", "list", "--tag", "bulk", "--json")
    listed = {d["serial"] for d in json.loads(out)}
    assert len(listed) == 5_001 and "SPG-CLI-05000" in listed
    path.write_text("\n".join(["serial,model,name,tags", *rows]) + "\n")
    code, out, _ = sg(demo, "devices", "import", str(path))
    assert code == 0
    assert "0 imported, 5001 already there, 0 refused" in out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sim", "load", "1", "--watts", "nan"], "--watts"),
        (["devices", "on", "1", "--delay", "inf"], "--delay"),
        (["devices", "off", "1", "--duration", "nan"], "--duration"),
        (["sim", "frequency", "--hz", "49.5", "--for", "inf"], "--for"),
        (["sim", "advance", "nan"], "seconds"),
        (["ffr", "create", "g", "--programme", "ercot-ffr", "--kw", "nan", "--tag", "t"], "--kw"),
        (["tokens", "create", "--expires-in", "inf"], "--expires-in"),
    ],
)
def test_a_number_that_is_not_finite_is_a_usage_error_not_a_traceback(
    args: list[str], option: str
) -> None:
    result = runner.invoke(app, [*args, "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr and "finite" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
