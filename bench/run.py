"""Benchmark: switchgear's hot paths against a bare Starlette baseline, side by side.

    python -m bench.run [--seconds 10] [--connections 64]

Every server runs the same way (uvicorn, uvloop + httptools, one worker, access log
off); the baseline is measured before and after the paths and averaged, and each path is
reported as a ratio of it, because the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import wrk

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], path: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        if path is None or path.exists():
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise TimeoutError(url)


def _uvicorn(app: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})


def _baseline(seconds: int, connections: int) -> wrk.Result:
    port = _free_port()
    proc = _uvicorn("bench.baseline:app", port)
    try:
        _wait(f"http://127.0.0.1:{port}/item/1", proc)
        return wrk.run(f"http://127.0.0.1:{port}/item/1", seconds=seconds, connections=connections)
    finally:
        proc.terminate()
        proc.wait()


def _switchgear(seconds: int, connections: int, tmp: Path) -> dict[str, wrk.Result]:
    """Seed a demo database, then serve it like the baseline and hit the hot paths."""
    db = tmp / "bench.db"
    creds = tmp / "creds.json"
    port = _free_port()
    seed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchgear",
            "demo",
            "--port",
            str(port),
            "--speed",
            "0",
            "--database-url",
            f"sqlite:///{db}",
            "--credentials-file",
            str(creds),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", seed, creds)
    finally:
        seed.terminate()
        seed.wait()
    c = json.loads(creds.read_text())
    token = c["account"]["token"]
    proc = _uvicorn(
        "switchgear.asgi:app",
        port,
        {"SWITCHGEAR_DATABASE_URL": f"sqlite:///{db}", "SWITCHGEAR_SPEED": "0"},
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/healthz", proc)
        plug = httpx.get(f"{base}/api/v1/devices?family=plug", headers=headers).json()[0]
        url = f"{base}/api/v1/devices/{plug['id']}"
        assert httpx.get(url, headers=headers).status_code == 200
        native = wrk.run(url, seconds=seconds, connections=connections, headers=headers)
        sp = c["smartplug"]
        fetch = wrk.run(
            f"{base}/provider/fetch",
            seconds=seconds,
            connections=connections,
            headers={"Authorization": f"Bearer {sp['access_token']}"},
            body=json.dumps({"serial_number": sp["serials"][0]}),
        )
        return {"GET /api/v1/devices/{id}": native, "POST /provider/fetch": fetch}
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    if not wrk.available():
        sys.exit("wrk is not installed: apt-get install wrk (Debian package)")
    with tempfile.TemporaryDirectory() as tmp:
        before = _baseline(args.seconds, args.connections)
        paths = _switchgear(args.seconds, args.connections, Path(tmp))
        after = _baseline(args.seconds, args.connections)
    base_rps = (before.rps + after.rps) / 2
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, one uvicorn worker (uvloop, httptools)")
    print("| path | req/s | p50 ms | p99 ms | non-2xx/errors | ratio to baseline |")
    print("|---|---|---|---|---|---|")
    rows = {
        "baseline (bare Starlette, before)": before,
        **paths,
        "baseline (bare Starlette, after)": after,
    }
    for name, r in rows.items():
        print(
            f"| {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | "
            f"{r.rps / base_rps:.2f} |"
        )


if __name__ == "__main__":
    main()
