"""The `switchgear` command: serve, demo, and clients of a running server."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from switchgear.cli import credentials, devices, sim, tokens, users
from switchgear.cli.server import configure_logging, serve
from switchgear.settings import Settings

app = typer.Typer(no_args_is_help=True, help="switchgear: control plane for switched loads.")
app.add_typer(devices.app, name="devices")
app.command("history")(devices.history)
app.add_typer(tokens.app, name="tokens")
app.add_typer(sim.app, name="sim")
app.add_typer(credentials.app, name="credentials")
app.add_typer(users.app, name="users")

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on (0 = any free port).")]
Speed = Annotated[
    float,
    typer.Option(help="Virtual clock speed: 1 = real time, 60 = an hour a minute, 0 = manual."),
]
DatabaseUrl = Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://...")]
CertFile = Annotated[
    str | None,
    typer.Option(help="Serve HTTPS/WSS with this PEM certificate (chain); needs --keyfile."),
]
KeyFile = Annotated[str | None, typer.Option(help="The PEM private key of --certfile.")]


def _tls(certfile: str | None, keyfile: str | None) -> dict[str, str]:
    if bool(certfile) != bool(keyfile):
        raise typer.BadParameter("--certfile and --keyfile go together")
    return {"tls_certfile": certfile, "tls_keyfile": keyfile} if certfile and keyfile else {}


@app.command("serve")
def serve_cmd(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    speed: Speed = 1.0,
    database_url: Annotated[
        str | None,
        typer.Option(help="Default: $SWITCHGEAR_DATABASE_URL or sqlite:///./switchgear.db"),
    ] = None,
    log_level: str = "info",
    certfile: CertFile = None,
    keyfile: KeyFile = None,
    link: Annotated[
        str | None,
        typer.Option(help="mqtt://host:port: also reach real devices on that broker."),
    ] = None,
) -> None:
    """Run the server on its database (the embedded default: SQLite, in-process devices)."""
    overrides = {"host": host, "port": port, "speed": speed, "log_level": log_level}
    overrides.update(_tls(certfile, keyfile))
    if database_url:
        overrides["database_url"] = database_url
    if link:
        overrides["link"] = link
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))


@app.command("demo")
def demo_cmd(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    speed: Speed = 1.0,
    database_url: DatabaseUrl = "sqlite:///./switchgear-demo.db",
    credentials_file: Annotated[str, typer.Option(help="Where to write the credentials.")] = (
        "./switchgear-demo.json"
    ),
    log_level: str = "info",
    certfile: CertFile = None,
    keyfile: KeyFile = None,
    fleet_size: Annotated[
        int,
        typer.Option(
            min=0, help="Simulated devices in all, spread over the families (0: the small fleet)."
        ),
    ] = 0,
) -> None:
    """Start the demo: two accounts with a simulated fleet each, every API ready to try."""
    settings = Settings(
        **_tls(certfile, keyfile),  # type: ignore[arg-type]
        host=host,
        port=port,
        speed=speed,
        database_url=database_url,
        credentials_file=credentials_file,
        demo=True,
        log_level=log_level,
        demo_fleet_size=fleet_size,
    )
    configure_logging(settings.log_level)
    asyncio.run(serve(settings, demo=True))


def main() -> None:
    app()
