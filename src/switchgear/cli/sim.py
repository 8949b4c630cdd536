"""`switchgear sim ...`: drive the simulated world of a running server."""

from __future__ import annotations

from typing import Annotated

import typer

from switchgear.cli.client import DEFAULT_CREDENTIALS, AccountOpt, CredsOpt, UrlOpt, call, resolve
from switchgear.cli.errors import handled
from switchgear.cli.output import console

app = typer.Typer(
    no_args_is_help=True, help="Mains, network, loads, grid and clock of simulated devices."
)


def _post(
    method: str, path: str, body: object, url: str | None, creds: str, account: str
) -> object:
    with handled():
        return call(resolve(url, creds, account), method, path, body)


@app.command("power-cycle")
def power_cycle(
    device_id: int,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Mains off and on: the device reboots into its power-on state."""
    _post(
        "POST", f"/api/v1/sim/devices/{device_id}/power-cycle", None, url, credentials_file, account
    )
    console.print(f"device {device_id} power-cycled", highlight=False)


@app.command("offline")
def offline(
    device_id: int,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Take the device off the network."""
    _post(
        "POST",
        f"/api/v1/sim/devices/{device_id}/online",
        {"online": False},
        url,
        credentials_file,
        account,
    )
    console.print(f"device {device_id} offline", highlight=False)


@app.command("online")
def online(
    device_id: int,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Bring the device back on the network."""
    _post(
        "POST",
        f"/api/v1/sim/devices/{device_id}/online",
        {"online": True},
        url,
        credentials_file,
        account,
    )
    console.print(f"device {device_id} online", highlight=False)


@app.command("load")
def load(
    device_id: int,
    watts: Annotated[float, typer.Option(help="Constant load in watts (negative exports).")],
    channel: Annotated[int, typer.Option("--channel", "-c", help="Metering point / socket.")] = 0,
    power_factor: float = 1.0,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Set the simulated load behind a channel."""
    body = {"channel": channel, "watts": watts, "power_factor": power_factor}
    _post("PUT", f"/api/v1/sim/devices/{device_id}/load", body, url, credentials_file, account)
    console.print(f"device {device_id} channel {channel}: {watts:g} W", highlight=False)


@app.command("grid")
def grid(
    frequency: Annotated[float | None, typer.Option(help="Grid frequency, Hz.")] = None,
    voltage: Annotated[float | None, typer.Option(help="Grid voltage, V.")] = None,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Set grid frequency and/or voltage for the account's fleet."""
    body = {"frequency_hz": frequency, "voltage_v": voltage}
    _post("PUT", "/api/v1/sim/grid", body, url, credentials_file, account)
    console.print(f"grid: {frequency or '-'} Hz, {voltage or '-'} V", highlight=False)


@app.command("frequency")
def frequency(
    hz: Annotated[float, typer.Option("--hz", help="Grid frequency during the event, Hz.")],
    for_s: Annotated[
        float | None,
        typer.Option(
            "--for", help="Seconds (virtual) until it returns to nominal; default: stays."
        ),
    ] = None,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """A grid frequency event every FFR-enabled controller of the account sees."""
    body = {"frequency_hz": hz, "duration_s": for_s}
    _post("PUT", "/api/v1/sim/grid", body, url, credentials_file, account)
    until = f" for {for_s:g} s" if for_s else ""
    console.print(f"grid frequency {hz:g} Hz{until}", highlight=False)


@app.command("advance")
def advance(
    seconds: float,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Move a manual clock (--speed 0) forward, firing every timer on the way."""
    out = _post(
        "POST", "/api/v1/sim/clock/advance", {"seconds": seconds}, url, credentials_file, account
    )
    now = out.get("now") if isinstance(out, dict) else None
    console.print(f"clock now {now}", highlight=False)
