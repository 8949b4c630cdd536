"""A `switchgear demo` process on a SQLite file, for the long reliability scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def start_demo(
    db: Path, port: int, speed: float = 1.0, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start it (or restart it on the same file) and wait for its credentials file."""
    creds = db.with_suffix(".creds.json")
    creds.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "switchgear", "demo", "--port", str(port),
           "--speed", str(speed), "--database-url", f"sqlite:///{db}",
           "--credentials-file", str(creds), "--log-level", "warning"]  # fmt: skip
    log = db.with_suffix(".log")
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})  # fmt: skip
    deadline = time.monotonic() + 60
    while not creds.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start (see {log})")
        time.sleep(0.05)
    return proc, dict(json.loads(creds.read_text()))
