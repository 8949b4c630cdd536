"""`switchgear devices ...` and `switchgear history`: read and switch devices on a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from switchgear.cli.client import JsonOpt, Target, call, finite
from switchgear.cli.importing import send
from switchgear.cli.output import console, device_tables, devices_table, print_json, statuses_table
from switchgear.cli.remote import remote, remote_at

app = typer.Typer(no_args_is_help=True, help="List, show and switch devices.")

Channel = Annotated[int, typer.Option("--channel", "-c", help="Channel, counting from 0.")]
Delay = Annotated[float, typer.Option(help="Switch after this many seconds.", parser=finite)]
Duration = Annotated[
    float | None, typer.Option(help="Then flip back after this many seconds.", parser=finite)
]


@app.command("list")
@remote
def list_devices(
    target: Target,
    family: Annotated[
        str | None, typer.Option(help="plug, strip, load_controller, meter, gateway")
    ] = None,
    tag: str | None = None,
    as_json: JsonOpt = False,
) -> None:
    """The account's devices with their current state."""
    params = {k: v for k, v in {"family": family, "tag": tag}.items() if v}
    data = call(target, "GET", "/api/v1/devices", params=params)
    print_json(data) if as_json else console.print(devices_table(data))


@app.command("show")
@remote
def show(
    target: Target,
    device_id: int,
    as_json: JsonOpt = False,
) -> None:
    """One device: channels, settings and meter readings."""
    data = call(target, "GET", f"/api/v1/devices/{device_id}")
    if as_json:
        print_json(data)
    else:
        for table in device_tables(data):
            console.print(table)


def _switch(
    action: str,
    device_id: int,
    channel: int,
    delay: float,
    duration: float | None,
    target: Target,
    as_json: bool,
) -> None:
    body: dict[str, Any] = {"action": action, "delay": delay}
    if duration is not None:
        body["duration"] = duration
    path = f"/api/v1/devices/{device_id}/channels/{channel}/switch"
    cmd = call(target, "POST", path, body)
    if as_json:
        print_json(cmd)
    else:
        when = f" in {delay:g} s" if delay else ""
        console.print(f"command {cmd['id']}: {action}{when} — {cmd['state']}", highlight=False)


@app.command("on")
@remote
def on(
    target: Target,
    device_id: int,
    channel: Channel = 0,
    delay: Delay = 0.0,
    duration: Duration = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch a channel on (now, or after --delay; for --duration)."""
    _switch("on", device_id, channel, delay, duration, target, as_json)


@app.command("off")
@remote
def off(
    target: Target,
    device_id: int,
    channel: Channel = 0,
    delay: Delay = 0.0,
    duration: Duration = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch a channel off (now, or after --delay; for --duration)."""
    _switch("off", device_id, channel, delay, duration, target, as_json)


@remote
def history(
    target: Target,
    device_id: int,
    start: Annotated[str | None, typer.Option(help="ISO 8601 (default: a day ago)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 (default: now)")] = None,
    limit: int = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow the cursor to the end.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A device's status records, oldest first."""
    params: dict[str, Any] = {"limit": limit}
    params.update({k: v for k, v in {"start": start, "end": end}.items() if v})
    statuses: list[dict[str, Any]] = []
    while True:
        page = call(target, "GET", f"/api/v1/devices/{device_id}/history", params=params)
        statuses += page["statuses"]
        if not (all_pages and page["next_cursor"]):
            break
        params["cursor"] = page["next_cursor"]
    print_json(statuses) if as_json else console.print(statuses_table(statuses))


@app.command("add-meter")
@remote_at("--server")  # --url is the meter's
def add_meter(
    target: Target,
    url: Annotated[str, typer.Option(help="The meter's address, e.g. http://192.168.4.1/")],
    devid: Annotated[str, typer.Option(help="Its 10-digit device id.")],
    devpass: Annotated[str, typer.Option(help="Its 6-digit PIN.")],
    model: Annotated[str, typer.Option(help="D101 (1-phase) or D103 (3-phase).")] = "D101",
    version: Annotated[str | None, typer.Option(help="standard (60 s) or extended (6 s)")] = None,
    name: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a real smart-MAIC meter; the server polls it within its rate limit."""
    body: dict[str, Any] = {"url": url, "devid": devid, "devpass": devpass, "model": model,
                            "name": name}  # fmt: skip
    if version:
        body["version"] = version
    made = call(target, "POST", "/api/v1/meters", body)
    if as_json:
        print_json(made)
    else:
        console.print(f"meter added as device {made['id']}", highlight=False)


@app.command("adopt")
@remote
def adopt(
    target: Target,
    protocol: Annotated[str, typer.Argument(help="shelly-gen1 or shelly-gen2")],
    mqtt_id: Annotated[str, typer.Argument(help="The device's MQTT id, e.g. shellyplug-A1B2C3")],
    name: str = "",
    serial: Annotated[
        str | None, typer.Option(help="Its serial on the smart-plug API (default: the MQTT id).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Adopt a real Shelly that talks to the server's MQTT broker."""
    body: dict[str, Any] = {"protocol": protocol, "mqtt_id": mqtt_id, "name": name}
    if serial:
        body["serial"] = serial
    made = call(target, "POST", "/api/v1/devices", body)
    if as_json:
        print_json(made)
    else:
        adopted = made.get("extra", {}).get("mqtt_id", mqtt_id)  # as the device spells it
        console.print(f"{adopted} adopted as device {made['id']}", highlight=False)


@app.command("import")
@remote
def import_devices(
    target: Target,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with the header serial,model,name,tags (and optionally"
            " protocol,address,pin), or JSON lines with those keys (a .jsonl file)."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add devices from a CSV or JSON lines file; exits 1 when any row is refused.

    Every row is checked; bad rows are listed with their line number and reason. Rows
    whose device the account already has are left as they are, so a file can be
    imported again.
    """
    report = send(target, file, show_progress=not as_json)
    if as_json:
        print_json(report)
    else:
        for r in report["refused"]:
            console.print(f"line {r['line']}: {r['reason']}", highlight=False, markup=False)
        console.print(
            f"{report['imported']} imported, {report['unchanged']} already there,"
            f" {len(report['refused'])} refused (of {report['rows']} rows)",
            highlight=False,
        )
    if report["refused"]:
        raise typer.Exit(1)
