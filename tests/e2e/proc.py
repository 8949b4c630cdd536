"""Start and stop real `switchgear` server processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0
POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    """A running `switchgear demo` and what it wrote."""

    proc: subprocess.Popen[bytes]
    credentials_path: Path
    log_path: Path

    @property
    def credentials(self) -> dict[str, Any]:
        return dict(json.loads(self.credentials_path.read_text()))

    @property
    def base_url(self) -> str:
        return str(self.credentials["base_url"])

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_once(self, text: str, timeout: float = 10.0) -> str:
        """The log once it holds `text`: the banner follows the credentials file, not
        before it, so a reader that saw the file may be a moment early."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return log


def launch(tmp: Path, args: Sequence[str], label: str = "demo",
           env: dict[str, str] | None = None) -> Demo:  # fmt: skip
    """Run `switchgear demo ARGS` writing its credentials file in `tmp` (any old one gone
    first) and its output to a log of its own there; returns at once."""
    creds = tmp / "credentials.json"
    creds.unlink(missing_ok=True)
    log_path = tmp / f"{label}-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "switchgear", "demo", "--credentials-file", str(creds), *args]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    return Demo(proc, creds, log_path)


def answering(demo: Demo, timeout: float, give_up: Callable[[Demo], None] = Demo.kill) -> Demo:
    """The demo once it has written its credentials file (it answers HTTP); if it exits
    first, or `timeout` passes (then `give_up` stops it), an error with its log."""
    deadline = time.monotonic() + timeout
    while not demo.credentials_path.exists():
        if demo.proc.poll() is not None:
            raise RuntimeError(f"demo exited with {demo.proc.returncode}:\n{demo.log()}")
        if time.monotonic() > deadline:
            give_up(demo)
            raise TimeoutError(f"demo did not start:\n{demo.log()}")
        time.sleep(POLL_S)
    return demo


def start_demo(
    tmp: Path,
    db: Path,
    extra: Sequence[str] = (),
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Demo:
    """Start the demo and wait until it has written its credentials file (it answers HTTP).

    `env` adds environment variables (SWITCHGEAR_* settings) for the demo process."""
    args = ["--port", str(port or free_port()), "--speed", "0", "--database-url",
            f"sqlite:///{db}", "--log-level", "warning", *extra]  # fmt: skip
    return answering(launch(tmp, args, env=env), START_TIMEOUT_S)


@contextmanager
def running_demo(tmp: Path) -> Iterator[Demo]:
    """A demo on `tmp/demo.db` (manual clock) for the length of the block, stopped after."""
    demo = start_demo(tmp, tmp / "demo.db")
    try:
        yield demo
    finally:
        demo.stop()
