"""`switchgear demo --certfile --keyfile`: HTTPS and WSS with a self-signed certificate.

The certificate is made in the test with `openssl`; a client that trusts it (and only
it) reaches every face over https, reads a Push3 response channel over wss at the
`response_channel_host` the API gave, and the real process cuts off a request whose
headers never finish. The demo's database is private to its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.proc import Demo, start_demo

pytestmark = pytest.mark.e2e


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(tmp)
    demo = start_demo(tmp, tmp / "demo.db", extra=["--certfile", str(cert), "--keyfile", str(key)],
                      env={"SWITCHGEAR_HEADER_TIMEOUT_S": "1"})  # fmt: skip
    try:
        yield demo, cert
    finally:
        demo.stop()


def test_the_demo_serves_https_with_its_certificate(tls_demo: tuple[Demo, Path]) -> None:
    demo, cert = tls_demo
    assert demo.base_url.startswith("https://127.0.0.1:")
    c = demo.credentials
    with httpx.Client(
        base_url=demo.base_url, verify=ssl.create_default_context(cafile=cert), timeout=10
    ) as client:
        r = client.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {c['account']['token']}"}
        )
        assert r.status_code == 200 and r.json()
    with pytest.raises(httpx.ConnectError):  # a client that does not trust it is refused
        httpx.get(f"{demo.base_url}/healthz", timeout=10)
    plain = demo.base_url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):  # and there is no plain HTTP on the port
        httpx.get(f"{plain}/healthz", timeout=10)


def test_a_push3_client_reads_its_channel_over_wss(tls_demo: tuple[Demo, Path]) -> None:
    demo, cert = tls_demo
    c = demo.credentials
    p3 = c["push3"]
    body = {"command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
            "params": {"relay": "Relay_2", "status": "open",
                       "meter_password": p3["meter_password"]}}  # fmt: skip
    with httpx.Client(
        base_url=demo.base_url, verify=ssl.create_default_context(cafile=cert), timeout=10
    ) as client:
        sent = client.post(f"/sendCommand?key={p3['key']}", json=body).json()
        native = {"Authorization": f"Bearer {c['account']['token']}"}
        client.post("/api/v1/sim/clock/advance", json={"seconds": 2}, headers=native)
    host, channel = sent["response_channel_host"], sent["response_channel_id"]

    async def read() -> dict[str, object]:
        ctx = ssl.create_default_context(cafile=str(cert))
        async with websockets.connect(f"wss://{host}/ws/{channel}.b1", ssl=ctx) as ws:
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    answer = asyncio.run(read())
    assert answer["msg_id"] == sent["msg_id"] and answer["success"] is True


def test_headers_that_never_finish_are_cut_off(tls_demo: tuple[Demo, Path]) -> None:
    demo, cert = tls_demo
    port = int(demo.base_url.rsplit(":", 1)[1])

    async def slow() -> bytes:
        ctx = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        try:
            return await asyncio.wait_for(reader.read(4096), 10)
        finally:
            writer.close()  # and wait: an SSL socket left half-closed warns at collection
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    assert asyncio.run(slow()).startswith(b"HTTP/1.1 408 ")


def test_the_database_is_private(tls_demo: tuple[Demo, Path]) -> None:
    demo, _ = tls_demo
    db = demo.credentials_path.parent / "demo.db"
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(demo.credentials_path.stat().st_mode) == 0o600
