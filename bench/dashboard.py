"""The dashboard's figures: the demo's week of backfill, /ui/'s first load, a device page's
10-day plot (server time of its API calls) and switch-to-screen latency in Chromium.

    python -m bench.dashboard [--starts 3] [--reads 200] [--loads 20] [--switches 60]
                              [--backends sqlite,postgresql]

- Backfill: the demo's first start (`demo.seed`) timed on a fresh database, with the
  backfill and without it (the baseline), side by side; SQLite in a temporary file,
  PostgreSQL on 127.0.0.1:5432 in a database made for the run and dropped after it.
- The rest runs against a `switchgear demo --speed 0` process on SQLite (its week of
  history written at the first start). The device page's calls are the ones it makes for
  "Last 10 days": the clock, the device, its history (one page of up to 5,000); each is
  timed from the client, sequentially, beside the bare Starlette baseline's small JSON
  (`bench.baseline`, served by uvicorn the same way) for the ratio.
- First load: a fresh browser context (no cache) opens /ui/; the browser's own
  Navigation Timing (DOMContentLoaded, load event), and the time until the sign-in form
  is shown as the driver (Playwright) sees it; bytes are the bodies of every response.
- Switch to screen: a signed-in page clicks a plug's switch and waits (in the page) until
  the switch shows the relay's new state; click to that frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import switchgear.demo as demo_module
from bench.demoproc import start_demo
from bench.run import ROOT, _free_port, _wait
from switchgear.app import create_app
from switchgear.settings import Settings

PG_ADMIN = os.environ.get("SWITCHGEAR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("SWITCHGEAR_CHROMIUM", "/usr/bin/chromium")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2), "n": len(ms)}  # fmt: skip


# --- backfill -----------------------------------------------------------------------


async def _first_start(url: str, with_backfill: bool) -> tuple[float, float, int]:
    """One first start on an empty database: seconds for the whole seed, for the
    backfill alone, and the statuses it wrote."""
    real = demo_module.backfill
    spent = [0.0, 0]

    async def timed(*args: Any, **kw: Any) -> int:
        t = time.perf_counter()
        n = await real(*args, **kw) if with_backfill else 0
        spent[0] += time.perf_counter() - t
        spent[1] += n
        return n

    demo_module.backfill = timed  # type: ignore[assignment]
    try:
        app = create_app(Settings(database_url=url, speed=0, demo=True))
        async with app.router.lifespan_context(app):
            t0 = time.perf_counter()
            await demo_module.seed(app.state.runtime)
            return time.perf_counter() - t0, float(spent[0]), int(spent[1])
    finally:
        demo_module.backfill = real


async def backfill_figures(backend: str, starts: int) -> dict[str, Any]:
    with_s, without_s, alone_s, rows = [], [], [], 0
    for i in range(starts * 2):
        on = i % 2 == 0  # alternate, so a loaded machine weighs on both alike
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                total, alone, rows_i = await _first_start(f"sqlite:///{tmp}/d.db", on)
        else:
            name = f"switchgear_bench_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                total, alone, rows_i = await _first_start(url, on)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
        if on:
            with_s.append(total)
            alone_s.append(alone)
            rows = rows_i
        else:
            without_s.append(total)
    w, wo = statistics.median(with_s), statistics.median(without_s)
    return {"first_start_with_backfill_s": round(w, 3), "first_start_baseline_s": round(wo, 3),
            "ratio": round(w / wo, 2), "added_s": round(w - wo, 3),
            "backfill_alone_s": round(statistics.median(alone_s), 3), "statuses": rows,
            "starts_each": starts}  # fmt: skip


# --- HTTP: the device page's calls --------------------------------------------------


def _client(base: str, headers: dict[str, str] | None = None) -> httpx.Client:
    """Keep-alive with TCP_NODELAY, as a browser does: without it the request's second
    write waits for the server's delayed ACK (40 ms a request, the client's doing)."""
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    transport = httpx.HTTPTransport(socket_options=nodelay)
    return httpx.Client(base_url=base, headers=headers, timeout=30, transport=transport)


def _timed_gets(client: httpx.Client, url: str, n: int, **kw: Any) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url, **kw)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return out


def device_page_figures(base: str, creds: dict[str, Any], reads: int) -> dict[str, Any]:
    h = {"Authorization": f"Bearer {creds['account']['token']}"}
    with _client(base, h) as c:
        devices = c.get("/api/v1/devices").json()
        meter = next(d for d in devices if d["model"] == "OMNIMETER-V4")
        now = c.get("/api/v1/sim/clock").json()["epoch"]
        iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
        q = {"start": iso(now - 10 * 86_400), "end": iso(now + 1), "limit": 5000}
        history = f"/api/v1/devices/{meter['id']}/history"
        first = c.get(history, params=q).json()
        page = {
            "clock": _timed_gets(c, "/api/v1/sim/clock", reads),
            "device": _timed_gets(c, f"/api/v1/devices/{meter['id']}", reads),
            "history_10_days": _timed_gets(c, history, reads, params=q),
        }
    total = [sum(t) for t in zip(*page.values(), strict=True)]
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--port", str(port),
           "--loop", "uvloop", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        _wait(f"http://127.0.0.1:{port}/item/1", proc)
        with _client(f"http://127.0.0.1:{port}") as c:
            base_ms = _timed_gets(c, "/item/1", reads)
    finally:
        proc.terminate()
        proc.wait()
    b99 = pct(base_ms, 99)
    out: dict[str, Any] = {
        "device": meter["name"],
        "history_records": len(first["statuses"]),
        "history_bytes": len(json.dumps(first)),
        "baseline_small_json": summary(base_ms),
    }
    for name, ms in [*page.items(), ("page_total", total)]:
        out[name] = {**summary(ms), "p99_ratio_to_baseline": round(pct(ms, 99) / b99, 1)}
    return out


# --- the browser ----------------------------------------------------------------------


def browser_figures(base: str, creds: dict[str, Any], loads: int, switches: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    account = creds["account"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        first_ms, first_bytes, nav_load, nav_dcl = [], [], [], []
        for _ in range(loads):
            ctx = browser.new_context(base_url=base)
            page = ctx.new_page()
            sizes: list[int] = []
            page.on("response", lambda r, s=sizes: s.append(len(r.body())))
            t = time.perf_counter()
            page.goto("/ui/")
            page.get_by_role("button", name="Sign in").wait_for()
            first_ms.append((time.perf_counter() - t) * 1000)
            page.wait_for_load_state("load")
            first_bytes.append(sum(sizes))
            nav = page.evaluate(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.domContentLoadedEventEnd, n.loadEventEnd]; })()"
            )
            nav_dcl.append(float(nav[0]))
            nav_load.append(float(nav[1]))
            ctx.close()
        ctx = browser.new_context(base_url=base)
        page = ctx.new_page()
        page.goto("/ui/")
        page.get_by_label("Email").fill(account["email"])
        page.get_by_label("Password").fill(account["password"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Live updates: on").wait_for()
        plug = next(
            d
            for d in httpx.get(
                f"{base}/api/v1/devices", headers={"Authorization": f"Bearer {account['token']}"}
            ).json()
            if d["family"] == "plug"
        )
        selector = f'input[role=switch][data-device="{plug["id"]}"]'
        page.locator(selector).first.wait_for()
        latencies = []
        for _ in range(switches):
            ms = page.evaluate(
                """(sel) => new Promise((done) => {
                    const input = document.querySelector(sel);
                    const want = !input.checked;
                    const t0 = performance.now();
                    input.click();
                    const look = () => (input.checked === want
                        ? done(performance.now() - t0) : requestAnimationFrame(look));
                    requestAnimationFrame(look);
                })""",
                selector,
            )
            latencies.append(float(ms))
        page_calls = _device_page_in_browser(page, creds, loads)
        ctx.close()
        browser.close()
    return {
        "device_page_10_days_in_browser": page_calls,
        "first_load": {
            "bytes": int(statistics.median(first_bytes)),
            "browser_dom_content_loaded": summary(nav_dcl),
            "browser_load_event": summary(nav_load),
            "with_the_driver_until_sign_in_shown": summary(first_ms),
        },
        "switch_to_screen": summary(latencies),
    }


def _device_page_in_browser(page: Any, creds: dict[str, Any], n: int) -> dict[str, Any]:
    """The Omnimeter's page with "Last 10 days" chosen n times: each API call's time as
    the browser's Resource Timing saw it (request start to response end), and the time
    from the choice to the plot drawn."""
    h = {"Authorization": f"Bearer {creds['account']['token']}"}
    devices = httpx.get(f"{creds['base_url']}/api/v1/devices", headers=h).json()
    meter = next(d for d in devices if d["model"] == "OMNIMETER-V4")
    page.goto(f"/ui/#/devices/{meter['id']}")
    page.get_by_role("heading", name=meter["name"]).wait_for()
    calls: dict[str, list[float]] = {}
    drawn = []
    for _ in range(n):
        got = page.evaluate(
            """() => new Promise((done) => {
                performance.clearResourceTimings();
                const status = document.getElementById("chart-status");
                status.textContent = "";
                const range = document.getElementById("range");
                range.value = "864000";
                const t0 = performance.now();
                range.dispatchEvent(new Event("change"));
                const look = () => {
                    if (!/readings over the last 10 days/.test(status.textContent)) {
                        requestAnimationFrame(look);
                        return;
                    }
                    const api = performance.getEntriesByType("resource")
                        .filter((e) => e.name.includes("/api/v1/"))
                        .map((e) => [new URL(e.name).pathname, e.responseEnd - e.requestStart]);
                    done({ drawn: performance.now() - t0, api });
                };
                requestAnimationFrame(look);
            })"""
        )
        drawn.append(float(got["drawn"]))
        for path, ms in got["api"]:
            key = "history" if path.endswith("/history") else path.rsplit("/", 1)[-1]
            calls.setdefault(key, []).append(float(ms))
    return {"choice_to_plot": summary(drawn), **{k: summary(v) for k, v in calls.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--switches", type=int, default=60)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    results: dict[str, Any] = {"loadavg_at_start": os.getloadavg()}
    for backend in filter(None, args.backends.split(",")):  # "" leaves the backfill out
        results[f"backfill_{backend}"] = asyncio.run(backfill_figures(backend, args.starts))
    with tempfile.TemporaryDirectory() as tmp:
        proc, creds = start_demo(Path(tmp) / "dash.db", _free_port(), speed=0)
        try:
            base = creds["base_url"]
            results["device_page_10_days"] = device_page_figures(base, creds, args.reads)
            results.update(browser_figures(base, creds, args.loads, args.switches))
        finally:
            proc.terminate()
            proc.wait()
    results["loadavg_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
