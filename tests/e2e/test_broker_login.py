"""Broker credentials and TLS: the server, a fleet and the CLI on a broker that demands them.

Each test that needs a broker starts its OWN Mosquitto on free ports (never the machine's
on 1883): one listener with a password file, one with TLS on a certificate signed by a
CA made here (openssl), both refusing anonymous clients.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.cli.main import app as cli
from switchgear.errors import InvalidInput
from switchgear.links.broker import broker
from switchgear.links.fleetnode import FleetNode
from switchgear.logsafe import redact
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import open_store
from tests.api.test_mqtt_devices import SECRET, until
from tests.conftest import add
from tests.e2e.proc import free_port

USER, PASSWORD = "bob", "s3cr3t:@/x"  # characters a URL must escape
QUOTED = quote(PASSWORD, safe="")


@dataclass
class OwnBroker:
    plain: int  # port: password, no TLS
    tls: int  # port: password and TLS
    ca: Path  # the CA that signed the broker's certificate

    def url(self, tls: bool, password: str = QUOTED) -> str:
        if tls:
            return f"mqtts://{USER}:{password}@localhost:{self.tls}"
        return f"mqtt://{USER}:{password}@127.0.0.1:{self.plain}"


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    for tool in ("mosquitto", "mosquitto_passwd", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    d = tmp_path_factory.mktemp("broker")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "2", "-subj", "/CN=switchgear test CA", cwd=d)  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
         "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf",
         cwd=d)  # fmt: skip
    _run("mosquitto_passwd", "-c", "-b", "passwd", USER, PASSWORD, cwd=d)
    plain, tls = free_port(), free_port()
    (d / "mosquitto.conf").write_text(
        # run as whoever starts it (root here must not drop to a user that cannot read d)
        ("user root\n" if os.geteuid() == 0 else "")
        + "per_listener_settings false\nallow_anonymous false\n"
        f"password_file {d / 'passwd'}\npersistence false\nlog_dest stderr\n"
        f"listener {plain} 127.0.0.1\n"
        f"listener {tls} 127.0.0.1\ncafile {d / 'ca.pem'}\n"
        f"certfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
    )
    log = (d / "mosquitto.log").open("wb")
    proc = subprocess.Popen(["mosquitto", "-c", str(d / "mosquitto.conf")], stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while b"running" not in (d / "mosquitto.log").read_bytes():
            assert proc.poll() is None, (d / "mosquitto.log").read_text()
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        yield OwnBroker(plain, tls, d / "ca.pem")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_a_link_url_gives_the_login_and_tls_and_never_shows_the_password() -> None:
    b = broker(f"mqtts://{USER}:{QUOTED}@broker.example:8884")
    assert (b.host, b.port, b.username, b.password, b.tls) == (
        "broker.example", 8884, USER, PASSWORD, True
    )  # fmt: skip
    assert broker("mqtts://broker.example").port == 8883  # the MQTT-over-TLS port
    assert broker("mqtt://broker.example").port == 1883
    assert PASSWORD not in str(b) and PASSWORD not in repr(b) and QUOTED not in repr(b)
    assert str(b) == f"mqtts://{USER}@broker.example:8884"
    # the login may come from the settings (out of `ps`); one in the URL wins
    apart = broker("mqtt://h:1", username="u", password="p")
    assert (apart.username, apart.password) == ("u", "p")
    assert broker("mqtt://x:y@h:1", username="u", password="p").username == "x"
    with pytest.raises(InvalidInput, match="need a TLS link"):
        broker("mqtt://h:1", ca_file="/etc/ca.pem")  # would be silently unused
    with pytest.raises(InvalidInput, match=r"SWITCHGEAR_MQTT_CA: no file /nowhere/ca\.pem"):
        broker("mqtts://h", ca_file="/nowhere/ca.pem")  # said at start, not at each retry
    with pytest.raises(InvalidInput) as err:
        broker(f"http://{USER}:{QUOTED}@h:1")
    assert QUOTED not in err.value.message
    assert redact(f"link mqtt://{USER}:{QUOTED}@h:1 up") == f"link mqtt://{USER}:[redacted]@h:1 up"


@pytest.mark.parametrize("server_tls", [False, True], ids=["server-password", "server-tls"])
async def test_a_server_and_its_fleet_log_in_to_the_broker_and_switch_a_plug(
    own_broker: OwnBroker, tmp_path: Path, server_tls: bool
) -> None:
    # the server on one listener, its fleet process on the other: both must get through
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = Settings(
        database_url=url, speed=1, secret_key=SECRET, link=own_broker.url(server_tls),
        mqtt_ca=str(own_broker.ca) if server_tls else None,
        fleet="external", command_timeout_s=5,
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        assert rt.fleet_link is not None and rt.mqtt is not None
        await until(lambda: rt.fleet_link is not None and rt.fleet_link.transport.connected)
        await until(lambda: rt.mqtt is not None and rt.mqtt.transport.connected)
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        plug = await add(rt, account.id, "SPGLOGIN01", "SHPLG-1")
        fleet_broker = broker(own_broker.url(not server_tls), ca_file=str(own_broker.ca)
                              if not server_tls else None)  # fmt: skip
        node = FleetNode(open_store(url), fleet_broker)
        await node.start()
        try:
            h = {"Authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                async def online() -> bool:
                    r = await client.get(f"/api/v1/devices/{plug.id}", headers=h)
                    return bool(r.json()["online"])

                await until(online, 10)
                path = f"/api/v1/devices/{plug.id}/channels/0/switch"
                r = await client.post(path, json={"action": "on"}, headers=h)
                assert r.status_code == 200, r.text
                r = await client.get(f"/api/v1/devices/{plug.id}", headers=h)
                assert r.json()["channels"][0]["on"] is True
        finally:
            await node.stop()


def test_a_wrong_password_is_one_clear_line_without_the_password(
    own_broker: OwnBroker, tmp_path: Path
) -> None:
    wrong = "not-the-password"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchgear", "serve", "--port", str(free_port()),
             "--database-url", f"sqlite:///{tmp_path / 's.db'}",
             "--link", own_broker.url(False, wrong)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # said, and the server serves on (the broker's password file may be fixed)
        deadline = time.monotonic() + 30
        while not all(x in log.read_text() for x in ("refused the connection", "listening on")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    text = log.read_text()
    line = next(x for x in text.splitlines() if "refused the connection" in x)
    assert f"mqtt://{USER}@127.0.0.1:{own_broker.plain}" in line
    assert "bad user name or password" in line
    assert "Traceback" not in text and wrong not in text


@pytest.mark.parametrize("command", ["serve", "fleet"])
def test_tls_files_with_a_plain_link_are_refused_at_start(command: str, tmp_path: Path) -> None:
    args = [command, "--link", f"mqtt://{USER}:{QUOTED}@127.0.0.1:1",
            "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]  # fmt: skip
    result = CliRunner().invoke(
        cli, args, env={"SWITCHGEAR_MQTT_CA": str(tmp_path / "ca.pem"), "COLUMNS": "300"}
    )
    assert result.exit_code == 2
    assert "need a TLS link: mqtts://host:port" in result.output
    assert QUOTED not in result.output and PASSWORD not in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything is opened
