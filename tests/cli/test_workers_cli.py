"""`serve`, `demo` and `fleet` refuse option combinations that cannot work, in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from switchgear.cli import main
from switchgear.cli.main import app
from switchgear.core.anchor import MANUAL_REFUSED
from switchgear.settings import Settings

runner = CliRunner()
PG = "postgresql://postgres@127.0.0.1:5432/nowhere"
LINK = "mqtt://127.0.0.1:1883"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "--workers", "2", "--database-url", PG], "needs --link mqtt://host:port"),
        (
            ["serve", "--workers", "2", "--link", LINK, "--database-url", "sqlite:///x.db"],
            "needs a PostgreSQL --database-url",
        ),
        (
            ["serve", "--workers", "2", "--link", LINK, "--database-url", PG, "--speed", "0"],
            MANUAL_REFUSED,
        ),
        (
            [
                "serve",
                "--workers",
                "2",
                "--link",
                LINK,
                "--database-url",
                PG,
                "--fleet",
                "in-process",
            ],
            "leave out --fleet in-process",
        ),
        (["demo", "--workers", "2"], "need --link mqtt://host:port"),
        (["demo", "--fleet-processes", "2"], "need --link mqtt://host:port"),
        (["demo", "--link", LINK, "--workers", "2"], "needs a PostgreSQL --database-url"),
        (["demo", "--link", LINK, "--speed", "0"], MANUAL_REFUSED),
        (["demo", "--link", "http://127.0.0.1:1883"], "is not mqtt://host:port"),
        (["serve", "--fleet", "external"], "an external fleet needs --link mqtt://host:port"),
        (["serve", "--fleet", "external", "--link", LINK, "--speed", "0"], MANUAL_REFUSED),
        (["serve", "--fleet", "elsewhere"], "--fleet is in-process or external"),
        (["serve", "--link", "http://127.0.0.1:1883"], "is not mqtt://host:port"),
        (["serve", "--certfile", "cert.pem"], "--certfile and --keyfile go together"),
        (["demo", "--keyfile", "key.pem"], "--certfile and --keyfile go together"),
        (["fleet", "--link", "http://127.0.0.1:1883"], "is not mqtt://host:port"),
        (["fleet", "--link", LINK, "--shard", "3/2"], "shard"),
    ],
)
def test_a_start_that_cannot_work_is_refused_in_one_line(args: list[str], says: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_serve_help_documents_workers() -> None:
    r = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "--workers" in r.stdout
    demo = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert "--fleet-processes" in demo.stdout and "--link" in demo.stdout


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["serve", "--speed", "-1"], {}, "--speed: Input should be greater than or equal to 0"),
        (["demo", "--port", "99999"], {}, "--port: Input should be less than or equal to 65535"),
        (["serve", "--log-level", "loud"], {}, "--log-level: "),
        (["demo", "--log-format", "xml"], {}, "--log-format: "),
        (["fleet", "--link", LINK, "--log-level", "loud"], {}, "--log-level: "),
        (["serve"], {"SWITCHGEAR_MAX_CONNECTIONS": "0"}, "SWITCHGEAR_MAX_CONNECTIONS: "),
    ],
)
def test_a_value_out_of_range_is_refused_in_one_line_naming_it(
    args: list[str], env: dict[str, str], says: str
) -> None:
    r = runner.invoke(app, args, env=env)
    assert r.exit_code == 2, r.output
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output and r.stdout == ""


def test_the_servers_options_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    async def serve(settings: Settings) -> None:  # stands in for the server: what it gets
        seen.append(settings)

    monkeypatch.setattr(main, "serve", serve)
    monkeypatch.setattr(main, "configure_logging", lambda *_: None)
    env = {
        "SWITCHGEAR_HOST": "127.0.0.2", "SWITCHGEAR_PORT": "9123", "SWITCHGEAR_SPEED": "0",
        "SWITCHGEAR_LOG_LEVEL": "warning", "SWITCHGEAR_LOG_FORMAT": "json",
    }  # fmt: skip
    r = runner.invoke(app, ["serve"], env=env)
    assert r.exit_code == 0, r.output
    (s,) = seen
    assert (s.host, s.port, s.speed, s.log_level, s.log_format) == (
        "127.0.0.2",
        9123,
        0.0,
        "warning",
        "json",
    )
    # an option given wins over the environment
    assert runner.invoke(app, ["serve", "--port", "9124"], env=env).exit_code == 0
    assert seen[1].port == 9124
    bad = runner.invoke(app, ["serve"], env={"SWITCHGEAR_PORT": "abc"})
    assert bad.exit_code == 2 and "SWITCHGEAR_PORT" in bad.output, bad.output
