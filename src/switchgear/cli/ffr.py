"""`switchgear ffr ...`: FFR programmes, groups, events and evidence of a running server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from switchgear.cli.client import (
    DEFAULT_CREDENTIALS,
    AccountOpt,
    CredsOpt,
    UrlOpt,
    call,
    finite,
    resolve,
)
from switchgear.cli.errors import handled
from switchgear.cli.output import console

app = typer.Typer(no_args_is_help=True, help="FFR aggregation: programmes, groups, events.")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


def _call(
    method: str,
    path: str,
    url: str | None,
    creds: str,
    account: str,
    body: object = None,
    params: dict[str, Any] | None = None,
) -> Any:
    with handled():
        return call(resolve(url, creds, account), method, path, body, params)


def _print(data: Any) -> None:
    console.print_json(json.dumps(data))


@app.command("programmes")
def programmes(
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """The preset programmes with their timing."""
    rows = _call("GET", "/api/v1/ffr/programmes", url, credentials_file, account)
    if as_json:
        _print(rows)
        return
    for p in rows:
        console.print(
            f"{p['id']:<22} {p['nominal_hz']:g} Hz  below {p['threshold_hz']:g} Hz "
            f"within {p['full_activation_s']:g} s, hold {p['min_support_s']:g} s",
            highlight=False,
        )


@app.command("create")
def create(
    name: str,
    programme: Annotated[str, typer.Option(help="A preset id (see `ffr programmes`).")],
    contracted_kw: Annotated[
        float, typer.Option("--kw", help="Contracted capacity (kW).", parser=finite)
    ],
    devices: Annotated[str | None, typer.Option(help="Device ids, comma separated.")] = None,
    tag: Annotated[str | None, typer.Option(help="Enrol the devices with this tag.")] = None,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Enrol controllers in a programme; print the group with what was refused and why."""
    body: dict[str, Any] = {"name": name, "programme": programme, "contracted_kw": contracted_kw}
    if devices is not None:
        body["device_ids"] = [int(i) for i in devices.split(",") if i.strip()]
    if tag is not None:
        body["tag"] = tag
    _print(_call("POST", "/api/v1/ffr/groups", url, credentials_file, account, body))


@dataclass(frozen=True, slots=True)
class ById:
    """A command naming one thing by its id: the API's answer is printed as it comes."""

    name: str
    method: str
    path: str  # with `{}` where the id goes
    metavar: str
    help: str


BY_ID = (
    ById("group", "GET", "/api/v1/ffr/groups/{}", "group_id",
         "A group with its capacity now and its 24-hour forecast."),
    ById("delete", "DELETE", "/api/v1/ffr/groups/{}", "group_id",
         "Delete a group: every device unenrolled, its previous FFR settings restored "
         "(refused while an event of the group is in progress)."),
    ById("prequalify", "POST", "/api/v1/ffr/groups/{}/prequalification", "group_id",
         "Run the programme's test on the simulated grid (report when its window ends)."),
    ById("event", "GET", "/api/v1/ffr/events/{}", "event_id",
         "An event's report: per device, and the verdict with its reasons."),
)  # fmt: skip


def _by_id(c: ById) -> None:
    """Add `c` to the app as a command of its own."""

    def command(
        ident: int = typer.Argument(..., metavar=c.metavar),
        url: UrlOpt = None,
        credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
        account: AccountOpt = "account",
    ) -> None:
        _print(_call(c.method, c.path.format(ident), url, credentials_file, account))

    app.command(c.name, help=c.help)(command)


for _c in BY_ID:
    _by_id(_c)


@app.command("unenrol")
def unenrol(
    group_id: int,
    device_id: int,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Take one device out of a group, its previous FFR settings restored."""
    path = f"/api/v1/ffr/groups/{group_id}/devices/{device_id}"
    _print(_call("DELETE", path, url, credentials_file, account))


@app.command("events")
def events(
    group_id: Annotated[int | None, typer.Option("--group")] = None,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Events, newest first."""
    params = {} if group_id is None else {"group": group_id}
    _print(_call("GET", "/api/v1/ffr/events", url, credentials_file, account, params=params))


@app.command("evidence")
def evidence(
    event_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write.")],
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Write the event's evidence CSV (time, frequency, active power at 100 ms, the
    resolution the power actually had, and whether the server observed each instant)."""
    target = resolve(url, credentials_file, account)
    _call("GET", f"/api/v1/ffr/events/{event_id}", url, credentials_file, account)  # 404s
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    with handled():
        r = httpx.get(
            f"{target.url}/api/v1/ffr/events/{event_id}/evidence.csv", headers=headers, timeout=60
        )
    output.write_text(r.text)
    console.print(f"{r.text.count(chr(10)) - 1} rows written to {output}", highlight=False)
