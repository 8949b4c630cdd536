"""The `switchgear` command: serve, demo, and clients of a running server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from switchgear.cli import credentials, devices, events, ffr, scaledemo, sim, tokens, users
from switchgear.cli.server import serve
from switchgear.cli.workers import refusal, serve_workers
from switchgear.core.anchor import MANUAL_REFUSED
from switchgear.errors import InvalidInput
from switchgear.links.broker import from_settings, is_broker_link
from switchgear.logs import configure_logging
from switchgear.settings import Settings

app = typer.Typer(no_args_is_help=True, help="switchgear: control plane for switched loads.")
app.add_typer(devices.app, name="devices")
app.command("history")(devices.history)
app.command("events")(events.events)
app.add_typer(tokens.app, name="tokens")
app.add_typer(sim.app, name="sim")
app.add_typer(credentials.app, name="credentials")
app.add_typer(users.app, name="users")
app.add_typer(ffr.app, name="ffr")

Host = Annotated[str, typer.Option(envvar="SWITCHGEAR_HOST", help="Address to listen on.")]
Port = Annotated[
    int, typer.Option(envvar="SWITCHGEAR_PORT", help="Port to listen on (0 = any free port).")
]
Speed = Annotated[
    float,
    typer.Option(
        envvar="SWITCHGEAR_SPEED",
        help="Virtual clock speed: 1 = real time, 60 = an hour a minute, 0 = manual.",
    ),
]
DatabaseUrl = Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://...")]
CertFile = Annotated[
    str | None,
    typer.Option(help="Serve HTTPS/WSS with this PEM certificate (chain); needs --keyfile."),
]
LogLevel = Annotated[
    str,
    typer.Option(
        envvar="SWITCHGEAR_LOG_LEVEL",
        help="debug, info (start-up steps, one line a request), warning, error.",
    ),
]
LogFormat = Annotated[
    str, typer.Option(envvar="SWITCHGEAR_LOG_FORMAT", help="text, or json: one JSON object a line.")
]
KeyFile = Annotated[str | None, typer.Option(help="The PEM private key of --certfile.")]
Workers = Annotated[
    int,
    typer.Option(
        min=1,
        help="API worker processes sharing the port (above 1: needs --link mqtt://... and a "
        "PostgreSQL --database-url; simulated devices then run in `switchgear fleet`).",
    ),
]


def _refuse(line: str) -> NoReturn:
    """One line on stderr, exit status 2 (a usage error)."""
    typer.echo(line, err=True)
    raise typer.Exit(2)


# settings whose option is not the field's name spelt as a flag
_FLAGS = {
    "tls_certfile": "--certfile", "tls_keyfile": "--keyfile", "demo_fleet_size": "--fleet-size",
}  # fmt: skip


def _settings(**given: Any) -> Settings:
    """Settings from the options given and SWITCHGEAR_*; a bad value is refused in one
    line naming its option (or environment variable), not a validation traceback."""
    try:
        return Settings(**given)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        where = (
            _FLAGS.get(field, "--" + field.replace("_", "-"))
            if field in given
            else f"SWITCHGEAR_{field.upper()}"
        )
        _refuse(f"switchgear: {where}: {first['msg'].removeprefix('Value error, ')}")


def _tls(certfile: str | None, keyfile: str | None) -> dict[str, str]:
    if bool(certfile) != bool(keyfile):
        _refuse("switchgear: --certfile and --keyfile go together")
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
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
    certfile: CertFile = None,
    keyfile: KeyFile = None,
    link: Annotated[
        str | None,
        typer.Option(
            help="mqtt://[user:password@]host:port, or mqtts:// for TLS: also reach real"
            " devices on that broker (login and TLS files: SWITCHGEAR_MQTT_*)."
        ),
    ] = None,
    fleet: Annotated[
        str | None,
        typer.Option(
            help="in-process (default) or external: simulated devices run in "
            "`switchgear fleet` processes on the --link broker."
        ),
    ] = None,
    workers: Workers = 1,
) -> None:
    """Run the server on its database (the embedded default: SQLite, in-process devices)."""
    if fleet is not None and fleet not in ("in-process", "external"):
        _refuse("switchgear: --fleet is in-process or external")
    if workers > 1 and fleet == "in-process":
        _refuse("switchgear: --workers above 1 runs the simulated devices in `switchgear fleet`"
                " processes: leave out --fleet in-process")  # fmt: skip
    overrides = {
        "host": host, "port": port, "speed": speed,
        "log_level": log_level, "log_format": log_format,
    }  # fmt: skip
    if fleet:
        overrides["fleet"] = fleet
    overrides.update(_tls(certfile, keyfile))
    if database_url:
        overrides["database_url"] = database_url
    if link:
        overrides["link"] = link
    settings = _settings(**overrides)
    if workers > 1:
        settings.fleet = "external"
        refused = refusal(settings, workers)
        if refused:
            _refuse(refused)
    if settings.fleet == "external" and not is_broker_link(settings.link):
        _refuse("switchgear: an external fleet needs --link mqtt://host:port")
    if settings.fleet == "external" and settings.speed <= 0:
        _refuse(f"switchgear: {MANUAL_REFUSED}")
    if settings.link != "memory":
        try:
            from_settings(settings)
        except InvalidInput as err:
            _refuse(f"switchgear: {err.message}")
    configure_logging(settings.log_level, settings.log_format)
    if workers > 1:
        serve_workers(settings, workers)
    else:
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
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
    certfile: CertFile = None,
    keyfile: KeyFile = None,
    fleet_size: Annotated[
        int,
        typer.Option(
            min=0, help="Simulated devices in all, spread over the families (0: the small fleet)."
        ),
    ] = 0,
    link: Annotated[
        str | None,
        typer.Option(
            help="mqtt://host:port: the scale-out demo, its devices in `switchgear fleet` "
            "processes on this broker."
        ),
    ] = None,
    workers: Workers = 1,
    fleet_processes: Annotated[
        int | None,
        typer.Option(min=1, help="With --link: `switchgear fleet` processes (default 1)."),
    ] = None,
) -> None:
    """Start the demo: two accounts with a simulated fleet each, every API ready to try."""
    if link is None and (workers > 1 or fleet_processes is not None):
        _refuse("switchgear: --workers and --fleet-processes need --link mqtt://host:port")
    settings = _settings(
        **_tls(certfile, keyfile),
        host=host,
        port=port,
        speed=speed,
        database_url=database_url,
        credentials_file=credentials_file,
        demo=True,
        log_level=log_level,
        log_format=log_format,
        demo_fleet_size=fleet_size,
    )
    if link is not None:  # the scale-out demo: API workers, fleet processes, the broker
        settings.link, settings.fleet = link, "external"
        try:
            from_settings(settings)
        except InvalidInput as err:
            _refuse(f"switchgear: {err.message}")
        if settings.speed <= 0:
            _refuse(f"switchgear: {MANUAL_REFUSED}")
        refused = refusal(settings, workers)
        if refused:
            _refuse(refused)
        configure_logging(settings.log_level, settings.log_format)
        scaledemo.run(settings, workers, fleet_processes or 1)
        return
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, demo=True))


@app.command("fleet")
def fleet_cmd(
    link: Annotated[
        str,
        typer.Option(
            envvar="SWITCHGEAR_LINK",
            help="mqtt://[user:password@]host:port (mqtts:// for TLS): the broker the server"
            " uses. Login and TLS files also from SWITCHGEAR_MQTT_USERNAME/_PASSWORD/_CA/"
            "_CERT/_KEY.",
        ),
    ],
    database_url: Annotated[
        str | None,
        typer.Option(help="The server's database. Default: $SWITCHGEAR_DATABASE_URL."),
    ] = None,
    shard: Annotated[
        str, typer.Option(help="i/n: serve the i-th of n shards of the simulated devices.")
    ] = "0/1",
    log_level: LogLevel = "info",
) -> None:
    """Run the database's simulated devices (of one shard) as MQTT clients, for a server
    started with --fleet external."""
    from switchgear.links.fleetnode import parse_shard, serve_fleet
    from switchgear.storage import open_store

    overrides: dict[str, str] = {"link": link, "log_level": log_level}
    if database_url:
        overrides["database_url"] = database_url
    settings = _settings(**overrides)
    try:
        broker = from_settings(settings)
        parts = parse_shard(shard)
    except InvalidInput as err:
        _refuse(f"switchgear: {err.message}")
    configure_logging(settings.log_level)
    store = open_store(settings.database_url)
    with contextlib.suppress(KeyboardInterrupt):
        serve_fleet(store, broker, parts, settings.push3_gateway_delay_s)


def main() -> None:
    app()
