"""A broker restart: the server notices, shows its devices offline, reconnects by itself."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_mqtt_devices import SECRET, Gen1, until
from tests.e2e.proc import free_port

pytestmark = pytest.mark.mqtt


class PrivateBroker:
    """A Mosquitto of this test's own (the shared one must not be restarted)."""

    def __init__(self, exe: str) -> None:
        self.exe, self.port = exe, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        quiet = subprocess.DEVNULL
        self.proc = subprocess.Popen([self.exe, "-p", str(self.port)], stdout=quiet, stderr=quiet)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if exe is None:
        pytest.skip("mosquitto is not installed: cannot run a private broker to restart")
    b = PrivateBroker(exe)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
async def served(broker: PrivateBroker) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    settings = Settings(database_url="memory://", speed=0, secret_key=SECRET,
                        link=f"mqtt://127.0.0.1:{broker.port}", command_timeout_s=5)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        account = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers=headers) as client:  # fmt: skip
            yield rt, client


async def test_after_a_broker_restart_the_server_resubscribes_and_devices_resync(
    broker: PrivateBroker, served: tuple[Runtime, httpx.AsyncClient]
) -> None:
    rt, client = served
    address = ("127.0.0.1", broker.port)
    assert rt.mqtt is not None
    await until(lambda: rt.mqtt is not None and rt.mqtt.transport.connected)

    async def online(dev: int) -> bool:
        return bool((await client.get(f"/api/v1/devices/{dev}")).json()["online"])

    async with Gen1(broker=address) as plug:
        body = {"protocol": "shelly-gen1", "mqtt_id": plug.mqtt_id}
        dev = (await client.post("/api/v1/devices", json=body)).json()["id"]
        await until(lambda: online(dev))
        broker.stop()
        await until(lambda: _not(online(dev)))
        r = await client.post(f"/api/v1/devices/{dev}/channels/0/switch", json={"action": "on"})
        assert r.status_code == 503
    broker.start()
    async with Gen1(plug.mqtt_id, broker=address) as again:  # the plug reconnects by itself
        await until(lambda: online(dev), seconds=15)  # the server's back-off is at most 10 s
        r = await client.post(f"/api/v1/devices/{dev}/channels/0/switch", json={"action": "on"})
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        assert again.on


async def _not(x: object) -> bool:
    return not await x  # type: ignore[misc]
