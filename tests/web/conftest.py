"""A real demo (manual clock) and a Chromium page on it that fails on any console error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from tests.e2e.proc import Demo, running_demo

CHROMIUM = os.environ.get("SWITCHGEAR_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("dashboard")) as d:
        yield d


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    if not Path(CHROMIUM).exists():  # `make test` installs it; say so rather than skip
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (make test does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def console() -> list[str]:
    """The page's console errors; a test that provokes one on purpose takes it out."""
    return []


@pytest.fixture
def page(
    browser: sync_api.Browser, demo: Demo, console: list[str], request: pytest.FixtureRequest
) -> Iterator[sync_api.Page]:
    ctx = browser.new_context(base_url=demo.base_url, viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors = console
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        ctx.close()
    assert errors == [], f"console errors: {errors}"
