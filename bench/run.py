"""Benchmark: switchgear's hot paths against a bare Starlette baseline, side by side.

    python -m bench.run [--seconds 10] [--connections 64] [--server uvicorn|granian]

Every server runs the same way (uvicorn, uvloop + httptools, one worker, access log
off; or, with --server granian, Granian's ASGI interface, uvloop, one worker); the
baseline is measured before and after the paths and averaged, and each path is reported
as a ratio of it, because the machines are shared and noisy.
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
from typing import Any

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


SERVER = "uvicorn"  # set from --server


def _uvicorn(app: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    if SERVER == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--loop", "uvloop", "--log-level",
               "warning", app]  # fmt: skip
        return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
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


def _baseline(seconds: int, connections: int) -> tuple[wrk.Result, wrk.Result]:
    """A bare Starlette endpoint that parses a small JSON body and returns a small JSON;
    and one returning a small JSON with `Connection: close` (the smart-MAIC meter's way)."""
    port = _free_port()
    proc = _uvicorn("bench.baseline:app", port)
    try:
        _wait(f"http://127.0.0.1:{port}/item/1", proc)
        body = json.dumps({"serial_number": "SPG900001", "command": "switch_on_off"})
        echo = wrk.run(f"http://127.0.0.1:{port}/echo", seconds=seconds,
                       connections=connections, body=body)  # fmt: skip
        close = wrk.run(f"http://127.0.0.1:{port}/item-close/1", seconds=seconds,
                        connections=connections)  # fmt: skip
        return echo, close
    finally:
        proc.terminate()
        proc.wait()


def seed_demo(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A demo database on a manual clock and its credentials, made by `switchgear demo`."""
    db, creds, port = tmp / "bench.db", tmp / "creds.json", _free_port()
    cmd = [sys.executable, "-m", "switchgear", "demo", "--port", str(port), "--speed", "0",
           "--database-url", f"sqlite:///{db}", "--credentials-file", str(creds),
           "--log-level", "warning"]  # fmt: skip
    seed = subprocess.Popen(cmd, cwd=ROOT)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", seed, creds)
    finally:
        seed.terminate()
        seed.wait()
    return db, dict(json.loads(creds.read_text()))


def _switchgear(
    seconds: int, connections: int, tmp: Path, only: list[str] | None = None
) -> dict[str, wrk.Result]:
    """Seed a demo database, then serve it like the baseline and hit the hot paths (those
    whose name holds a word of `only`, if given)."""
    db, c = seed_demo(tmp)
    port = _free_port()
    token = c["account"]["token"]
    proc = _uvicorn(
        "switchgear.asgi:app",
        port,
        {
            "SWITCHGEAR_DATABASE_URL": f"sqlite:///{db}",
            "SWITCHGEAR_SPEED": "0",
            "SWITCHGEAR_METERHTTP_RATE_LIMIT": "false",
        },
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/healthz", proc)
        plug = httpx.get(f"{base}/api/v1/devices?family=plug", headers=headers).json()[0]
        url = f"{base}/api/v1/devices/{plug['id']}"
        assert httpx.get(url, headers=headers).status_code == 200
        sp = c["smartplug"]
        sp_auth = {"Authorization": f"Bearer {sp['access_token']}"}
        serial = sp["serials"][0]
        m = next(x for x in c["meterhttp"]["meters"] if x["version"] == "extended")
        pc = c["powercontroller"]
        paths: dict[str, tuple[str, dict[str, str], str | None]] = {
            "GET /api/v1/devices/{id}": (url, headers, None),
            "POST /provider/fetch": (f"{base}/provider/fetch", sp_auth,
                                     json.dumps({"serial_number": serial})),
            "POST /provider/send (switch, durable ack)": (
                f"{base}/provider/send", sp_auth,
                json.dumps({"serial_number": serial, "command": "switch_on_off", "state": "on"}),
            ),
            "GET /?page=getdata (extended meter, no rate limit)": (
                f"{base}/?page=getdata&devid={m['devid']}&devpass={m['devpass']}", {}, None),
            "GET /v1/statuses (one device, one day)": (
                f"{base}/v1/statuses?device={pc['device_ids'][0]}",
                {"Authorization": f"Bearer {pc['token']}"}, None),
        }  # fmt: skip
        return {
            name: wrk.run(target, seconds=seconds, connections=connections, headers=h, body=b)
            for name, (target, h, b) in paths.items()
            if not only or any(word in name for word in only)
        }
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    ap.add_argument("--path", action="append", metavar="WORD",
                    help="only the paths whose name holds WORD (repeatable): send")  # fmt: skip
    args = ap.parse_args()
    global SERVER
    SERVER = args.server
    if not wrk.available():
        sys.exit("wrk is not installed: apt-get install wrk (Debian package)")
    with tempfile.TemporaryDirectory() as tmp:
        before, before_close = _baseline(args.seconds, args.connections)
        paths = _switchgear(args.seconds, args.connections, Path(tmp), args.path)
        after, after_close = _baseline(args.seconds, args.connections)
    base_rps = (before.rps + after.rps) / 2
    close_rps = (before_close.rps + after_close.rps) / 2
    rows = {
        "baseline (bare Starlette JSON echo, before)": before,
        **paths,
        "baseline (bare Starlette JSON echo, after)": after,
        "baseline, Connection: close (before)": before_close,
        "baseline, Connection: close (after)": after_close,
    }
    meter = next((r for name, r in paths.items() if "getdata" in name), None)
    if args.json:
        print(json.dumps({
            "connections": args.connections, "seconds": args.seconds,
            "rows": [{"name": name, "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                      "errors": r.errors, "ratio": round(r.rps / base_rps, 3)}
                     for name, r in rows.items()],
            "getdata_vs_close_baseline": meter and round(meter.rps / close_rps, 3),
        }, indent=2))  # fmt: skip
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, one {SERVER} worker (uvloop)")
    print("| path | req/s | p50 ms | p99 ms | non-2xx/errors | ratio to baseline |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | "
            f"{r.rps / base_rps:.2f} |"
        )
    if meter is not None:
        print(f"getdata against the Connection: close baseline: {meter.rps / close_rps:.2f}")


if __name__ == "__main__":
    main()
