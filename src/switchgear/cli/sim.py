"""`switchgear sim ...`: drive the simulated world of a running server."""

from __future__ import annotations

from typing import Annotated

import typer

from switchgear.cli.client import Target, call, finite
from switchgear.cli.output import console
from switchgear.cli.remote import remote

app = typer.Typer(
    no_args_is_help=True, help="Mains, network, loads, grid and clock of simulated devices."
)


@app.command("power-cycle")
@remote
def power_cycle(
    target: Target,
    device_id: int,
) -> None:
    """Mains off and on: the device reboots into its power-on state."""
    call(target, "POST", f"/api/v1/sim/devices/{device_id}/power-cycle", None)
    console.print(f"device {device_id} power-cycled", highlight=False)


@app.command("offline")
@remote
def offline(
    target: Target,
    device_id: int,
) -> None:
    """Take the device off the network."""
    call(target, "POST", f"/api/v1/sim/devices/{device_id}/online", {"online": False})
    console.print(f"device {device_id} offline", highlight=False)


@app.command("online")
@remote
def online(
    target: Target,
    device_id: int,
) -> None:
    """Bring the device back on the network."""
    call(target, "POST", f"/api/v1/sim/devices/{device_id}/online", {"online": True})
    console.print(f"device {device_id} online", highlight=False)


@app.command("load")
@remote
def load(
    target: Target,
    device_id: int,
    watts: Annotated[
        float, typer.Option(help="Constant load in watts (negative exports).", parser=finite)
    ],
    channel: Annotated[int, typer.Option("--channel", "-c", help="Metering point / socket.")] = 0,
    power_factor: Annotated[float, typer.Option(parser=finite)] = 1.0,
) -> None:
    """Set the simulated load behind a channel."""
    body = {"channel": channel, "watts": watts, "power_factor": power_factor}
    call(target, "PUT", f"/api/v1/sim/devices/{device_id}/load", body)
    console.print(f"device {device_id} channel {channel}: {watts:g} W", highlight=False)


@app.command("grid")
@remote
def grid(
    target: Target,
    frequency: Annotated[
        float | None, typer.Option(help="Grid frequency, Hz.", parser=finite)
    ] = None,
    voltage: Annotated[float | None, typer.Option(help="Grid voltage, V.", parser=finite)] = None,
) -> None:
    """Set grid frequency and/or voltage for the account's fleet."""
    body = {"frequency_hz": frequency, "voltage_v": voltage}
    call(target, "PUT", "/api/v1/sim/grid", body)
    console.print(f"grid: {frequency or '-'} Hz, {voltage or '-'} V", highlight=False)


@app.command("frequency")
@remote
def frequency(
    target: Target,
    hz: Annotated[
        float, typer.Option("--hz", help="Grid frequency during the event, Hz.", parser=finite)
    ],
    for_s: Annotated[
        float | None,
        typer.Option(
            "--for",
            help="Seconds (virtual) until it returns to nominal; default: stays.",
            parser=finite,
        ),
    ] = None,
) -> None:
    """A grid frequency event every FFR-enabled controller of the account sees."""
    body = {"frequency_hz": hz, "duration_s": for_s}
    call(target, "PUT", "/api/v1/sim/grid", body)
    until = f" for {for_s:g} s" if for_s else ""
    console.print(f"grid frequency {hz:g} Hz{until}", highlight=False)


@app.command("advance")
@remote
def advance(
    target: Target,
    seconds: Annotated[float, typer.Argument(parser=finite)],
) -> None:
    """Move a manual clock (--speed 0) forward, firing every timer on the way."""
    out = call(target, "POST", "/api/v1/sim/clock/advance", {"seconds": seconds})
    now = out.get("now") if isinstance(out, dict) else None
    console.print(f"clock now {now}", highlight=False)
