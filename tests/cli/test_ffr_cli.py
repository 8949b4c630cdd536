"""`switchgear ffr` against a real demo server: enrol, prequalify, report, evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from switchgear.cli.main import app
from tests.e2e.proc import Demo, running_demo

pytestmark = pytest.mark.e2e

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("ffrcli")) as d:
        yield d


def sg(demo: Demo, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--credentials-file", str(demo.credentials_path)])
    return result.exit_code, result.stdout + result.stderr


def test_an_aggregator_enrols_tests_and_files_the_evidence(demo: Demo, tmp_path: Path) -> None:
    code, out = sg(demo, "ffr", "programmes")
    assert code == 0 and "ercot-ffr" in out and "nordic-ffr-49.5" in out
    code, out = sg(demo, "devices", "list", "--family", "load_controller", "--json")
    assert code == 0, out
    ids = [d["id"] for d in json.loads(out)]
    code, out = sg(
        demo,
        "ffr",
        "create",
        "heaters",
        "--programme",
        "ercot-ffr",
        "--kw",
        "1",
        "--devices",
        ",".join(map(str, ids)),
    )
    assert code == 0, out
    group = json.loads(out)
    assert group["devices"] == ids and group["refused"] == []
    code, out = sg(demo, "ffr", "prequalify", str(group["id"]))
    assert code == 0, out
    event_id = json.loads(out)["event_id"]
    code, out = sg(demo, "sim", "advance", "900")
    assert code == 0, out
    code, out = sg(demo, "ffr", "event", str(event_id))
    assert code == 0, out
    report = json.loads(out)
    assert report["frequency_min_hz"] == 59.75
    assert [d["device_id"] for d in report["devices"]] == ids
    csv = tmp_path / "evidence.csv"
    code, out = sg(demo, "ffr", "evidence", str(event_id), "-o", str(csv))
    assert code == 0, out
    lines = csv.read_text().splitlines()
    header = "time,frequency_hz,active_power_kw,power_resolution_s,observed"
    assert lines[0] == header and len(lines) == 9102
    assert lines[1].endswith(",0.1,true")  # twins: exact, observed throughout
    code, out = sg(demo, "ffr", "event", str(event_id), "--account", "other")
    assert code != 0 and "not found" in out
    code, out = sg(demo, "ffr", "unenrol", str(group["id"]), str(ids[0]))
    assert code == 0, out
    assert json.loads(out) == {"device_id": ids[0], "restored": True, "reason": None}
    code, out = sg(demo, "ffr", "delete", str(group["id"]))
    assert code == 0, out
    assert json.loads(out) == {"id": group["id"], "restored": ids[1:], "not_restored": []}
    code, out = sg(demo, "ffr", "group", str(group["id"]))
    assert code != 0 and "not found" in out


@pytest.mark.parametrize(
    ("selects", "says"),
    [
        (["--tag", "nothing-has-this"], "no device of the account has the tag 'nothing-has-this'"),
        (["--devices", ""], "device_ids is empty"),
    ],
)
def test_create_with_no_device_matched_is_a_one_line_error(
    demo: Demo, selects: list[str], says: str
) -> None:
    args = ["ffr", "create", "empty", "--programme", "ercot-ffr", "--kw", "1", *selects]
    r = runner.invoke(app, [*args, "--credentials-file", str(demo.credentials_path)])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("error: no device matched: ") and says in r.stderr
    assert r.stderr.strip().endswith("(HTTP 422)") and len(r.stderr.strip().splitlines()) == 1
    token = demo.credentials["account"]["token"]
    groups = httpx.get(
        f"{demo.base_url}/api/v1/ffr/groups", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [g for g in groups if g["name"] == "empty"] == []


BY_ID = [("group", "group_id"), ("delete", "group_id"), ("prequalify", "group_id"),
         ("event", "event_id")]  # fmt: skip


@pytest.mark.parametrize(("command", "name"), BY_ID)
def test_a_command_by_id_says_which_argument_is_missing_or_not_a_number(
    command: str, name: str
) -> None:
    missing = runner.invoke(app, ["ffr", command])
    assert missing.exit_code == 2 and f"Missing argument '{name}'" in missing.stderr
    word = runner.invoke(app, ["ffr", command, "seven"])
    said = " ".join(word.stderr.replace("│", " ").split())  # (the box wraps its lines)
    assert word.exit_code == 2 and f"Invalid value for '{name}'" in said
    assert "should be a valid integer" in said
