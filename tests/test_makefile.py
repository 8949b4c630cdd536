"""`make demo` installs what the demo runs and says so; the dev tools wait for `make test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _plan(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n: print the recipe, run nothing; -B: as on a first run, with no .venv yet
    run = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return run.stdout


def test_make_demo_installs_the_runtime_alone_with_progress() -> None:
    plan = _plan("demo")
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs and all("[dev]" not in line for line in installs)
    assert all("--quiet" not in line for line in installs)
    assert "Installing switchgear" in plan


def test_make_test_installs_the_dev_tools() -> None:
    assert "pip install --quiet -e '.[dev]'" in _plan("test")
