"""The scale-out demo as a user runs it: N API workers on one port, M fleet processes, the
broker and PostgreSQL; then kill -9 of a worker, of a fleet process, and a broker restart,
each under a stream of switch commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_mqtt_devices import require_broker
from tests.e2e.proc import free_port
from tests.e2e.scaleout import (
    LINK,
    Stream,
    alive,
    check_acknowledged,
    descendants,
    fleet_pids,
    native,
    require_mosquitto,
    scaleout,
    start_scaleout,
    stop_all,
    wait_for,
    worker_of,
    worker_pids,
)
from tests.e2e.test_tls import self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt, pytest.mark.postgres]


def plug_id(demo_base: str, headers: dict[str, str]) -> int:
    devices = httpx.get(f"{demo_base}/api/v1/devices?family=plug", headers=headers).json()
    return int(devices[0]["id"])


def test_the_scale_out_demo_serves_every_face_from_both_workers_and_ctrl_c_stops_all(
    tmp_path: Path, pg: str
) -> None:
    require_broker()
    demo = start_scaleout(tmp_path, pg, LINK, workers=2, fleet=2)
    try:
        c = demo.credentials
        assert c["base_url"].startswith("http://127.0.0.1:") and c["speed"] == 1
        for section in ("smartplug", "multisocket", "powercontroller", "push3", "meterhttp"):
            assert section in c and section in c["other_account"]
        assert len(worker_pids(demo)) == 2 and len(fleet_pids(demo)) == 2
        # many fresh connections: both workers answer
        seen: set[str] = set()
        for _ in range(200):
            seen.add(worker_of(demo.base_url))
            if len(seen) == 2:
                break
        assert seen == {str(p) for p in worker_pids(demo)}
        with httpx.Client(base_url=demo.base_url, timeout=15) as client:
            devices = client.get("/api/v1/devices", headers=native(demo)).json()
            assert {d["family"] for d in devices} == {
                "plug", "strip", "load_controller", "meter", "gateway"}  # fmt: skip
            assert all(d["online"] for d in devices)
            plug = next(d for d in devices if d["model"] == "SHPLG-1")
            assert plug["channels"][0]["on"] is True  # switched on, as the embedded demo has
            sp = c["smartplug"]
            r = client.post("/provider/send", json={"serial_number": sp["serials"][0],
                            "command": "switch_on_off", "state": "off"},
                            headers={"Authorization": f"Bearer {sp['access_token']}"})  # fmt: skip
            assert r.status_code == 200, r.text
            r = client.post("/provider/fetch", json={"serial_number": sp["serials"][0]},
                            headers={"Authorization": f"Bearer {sp['access_token']}"})  # fmt: skip
            assert r.status_code == 200 and r.json()["provider"]["online"] is True
            ms = c["multisocket"]
            path = "/multioutlet/plug/energy/addressLocation/plants/{}/parameter/id/value/{}"
            r = client.post(path.format(ms["plant_id"], ms["plugs"][2]["id"]),
                            json={"status": [True]},
                            headers={"Ocp-Apim-Subscription-Key": ms["subscription_key"],
                                     "Authorization": ms["id_token"]})  # fmt: skip
            assert r.status_code == 200 and r.json()["plugs"][0]["status"] == [True], r.text
            pc = c["powercontroller"]
            r = client.get(f"/v1/devices/{pc['device_ids'][0]}",
                           headers={"Authorization": f"Bearer {pc['token']}"})  # fmt: skip
            assert r.status_code == 200 and r.json()["device"]["status"]["state"] == "Active"
            p3 = c["push3"]
            r = client.post(f"/sendCommand?key={p3['key']}", json={
                "command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
                "params": {"relay": "Relay_2", "status": "open",
                           "meter_password": p3["meter_password"]}})  # fmt: skip
            assert r.status_code == 200 and "response_channel_id" in r.json(), r.text
            m = c["meterhttp"]["meters"][0]
            r = client.get(f"/?page=getdata&devid={m['devid']}&devpass={m['devpass']}")
            assert r.status_code == 200 and "data" in r.json()
            r = client.get("/ui/")
            assert r.status_code == 200
        children = descendants(demo.proc.pid)
        assert len(children) >= 4
        demo.proc.send_signal(signal.SIGINT)  # Ctrl-C
        demo.proc.wait(30)
        wait_for(lambda: not any(alive(p) for p in children), 15, "every child stopped")
    finally:
        stop_all(demo)


def test_kill_9_of_an_api_worker_loses_no_acknowledged_command(tmp_path: Path, pg: str) -> None:
    require_broker()
    with scaleout(tmp_path, pg, LINK, workers=2, fleet=1) as demo:
        h = native(demo)
        device = plug_id(demo.base_url, h)
        with Stream(demo.base_url, h, device) as stream:
            wait_for(lambda: len(stream.acked) >= 10, 30, "commands acknowledged")
            victim, survivor = worker_pids(demo)
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: not alive(victim), 10, "the worker died")
            acked = len(stream.acked)
            wait_for(lambda: len(stream.acked) >= acked + 10, 30, "served after the kill")
            # the supervisor brought a worker back, and it answers
            wait_for(lambda: len(worker_pids(demo)) == 2, 30, "a new worker")
            (new,) = set(worker_pids(demo)) - {survivor}
            wait_for(lambda: worker_of(demo.base_url) == str(new), 60, "the new one answers")
            acked = len(stream.acked)
            wait_for(lambda: len(stream.acked) >= acked + 10, 30, "served by both")
        assert "API worker" in demo.log() and "exited" in demo.log()
        check_acknowledged(demo, stream)


def _fresh_reads(base_url: str, headers: dict[str, str], device_id: int) -> list[dict[str, Any]]:
    """The device as several fresh connections (so every worker, likely) read it."""
    return [httpx.get(f"{base_url}/api/v1/devices/{device_id}", headers=headers).json()
            for _ in range(6)]  # fmt: skip


def test_kill_9_of_a_fleet_process_takes_its_devices_offline_until_it_is_back(
    tmp_path: Path, pg: str
) -> None:
    require_broker()
    with scaleout(tmp_path, pg, LINK, workers=2, fleet=1) as demo:
        h, other = native(demo), native(demo, "other_account")
        (victim,) = fleet_pids(demo)
        device = plug_id(demo.base_url, h)
        # the other account's plug keeps its last state over a power cycle (power_on
        # "last"): the state its last acknowledged command left must come back from the
        # NVRAM the fleet process had committed before it answered
        kept = plug_id(demo.base_url, other)
        with httpx.Client(base_url=demo.base_url, headers=other, timeout=15) as client:
            r = client.patch(f"/api/v1/devices/{kept}/settings", json={"power_on": "last"})
            assert r.status_code == 200, r.text
            for action in ("off", "on"):
                r = client.post(f"/api/v1/devices/{kept}/channels/0/switch",
                                json={"action": action})  # fmt: skip
                assert r.status_code == 200 and r.json()["state"] == "done", r.text
        with Stream(demo.base_url, h, device) as stream:
            wait_for(lambda: len(stream.acked) >= 10, 30, "commands acknowledged")
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: stream.offline > 0, 20, "the offline answer")
            acked_at_kill = len(stream.acked)
            # the demo starts the fleet process again; its devices come back online
            wait_for(lambda: len(stream.acked) >= acked_at_kill + 5, 60, "the device is back")
        assert "fleet process 0/1" in demo.log() and "starting it again" in demo.log()
        check_acknowledged(demo, stream)
        last = stream.acked[-1]["action"] == "on"
        for state in _fresh_reads(demo.base_url, h, device):
            assert state["online"] and state["channels"][0]["on"] is last
        for state in _fresh_reads(demo.base_url, other, kept):
            assert state["online"] and state["channels"][0]["on"] is True
        history = httpx.get(f"{demo.base_url}/api/v1/devices/{device}/history?limit=5000",
                            headers=h).json()  # fmt: skip
        kinds = {(s["kind"], s["reason"]) for s in history["statuses"]}
        assert {("connection", "offline"), ("connection", "online")} <= kinds


class OwnBroker:
    """A mosquitto of the test's own on a free port (the machine's is never restarted)."""

    def __init__(self, log: Path) -> None:
        self.binary = require_mosquitto()
        self.port = free_port()
        self.log = log.open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-p", str(self.port)],
                                     stdout=self.log, stderr=self.log)  # fmt: skip
        wait_for(self.answers, 10, "mosquitto listens")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path / "mosquitto.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        broker.log.close()


def test_a_broker_restart_under_a_command_stream_needs_no_operator(
    tmp_path: Path, pg: str, own_broker: OwnBroker
) -> None:
    link = f"mqtt://127.0.0.1:{own_broker.port}"
    with scaleout(tmp_path, pg, link, workers=2, fleet=1) as demo:
        h = native(demo)
        device = plug_id(demo.base_url, h)
        with Stream(demo.base_url, h, device) as stream:
            wait_for(lambda: len(stream.acked) >= 10, 30, "commands acknowledged")
            own_broker.stop()
            wait_for(lambda: stream.offline > 0, 20, "the offline answer")
            own_broker.start()
            acked = len(stream.acked)
            wait_for(lambda: len(stream.acked) >= acked + 10, 45, "served again")
        check_acknowledged(demo, stream)
        wait_for(  # every worker has the device online again (each reconnects by itself)
            lambda: all(s["online"] for s in _fresh_reads(demo.base_url, h, device)),
            30,
            "every worker sees the device online",
        )


def test_serve_workers_keeps_tls_the_connection_guard_json_logs_and_the_port_line(
    tmp_path: Path, pg: str
) -> None:
    require_broker()
    cert, key = self_signed(tmp_path)
    port = free_port()
    cmd = [sys.executable, "-m", "switchgear", "serve", "--workers", "2", "--port", str(port),
           "--link", LINK, "--database-url", pg, "--certfile", str(cert), "--keyfile", str(key),
           "--log-format", "json"]  # fmt: skip
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                env={**os.environ, "SWITCHGEAR_HEADER_TIMEOUT_S": "1"})  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    tls = ssl.create_default_context(cafile=cert)
    try:

        def pid() -> str:
            try:
                return httpx.get(f"{base}/healthz", verify=tls, timeout=2).headers.get(
                    "X-Switchgear-Worker", ""
                )
            except httpx.HTTPError:
                return ""

        seen: set[str] = set()
        wait_for(lambda: bool(seen.add(pid()) or len(seen - {""}) == 2), 90, "both workers")
        # the connection guard (httpguard) runs in the workers: headers that never end get 408
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            tls.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped,
        ):
            wrapped.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            wrapped.settimeout(10)
            assert wrapped.recv(100).startswith(b"HTTP/1.1 408 ")
        # a second server on the port: the one-line refusal, nothing started
        second = subprocess.run(cmd, capture_output=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.decode().strip().splitlines() == [
            f"switchgear: port {port} on 127.0.0.1 is already in use; "
            "stop what holds it or choose another with --port"
        ]
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        wait_for(lambda: not any(alive(p) for p in children), 15, "every worker stopped")
        lines = [ln for ln in log_path.read_text().splitlines() if ln.startswith("{")]
        assert any(json.loads(ln)["message"].startswith("API worker") for ln in lines)
    finally:  # a failed assertion leaves no worker behind either
        left = descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        for pid in left | descendants(proc.pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
