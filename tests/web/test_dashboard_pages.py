"""The dashboard's history, grid, FFR and credentials pages in a real browser, on a fresh
demo (its week of history written at the first start, its clock manual)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.proc import Demo
from tests.web.conftest import SHOTS
from tests.web.test_dashboard import api, native_devices, sign_in

pytestmark = pytest.mark.e2e


def device(demo: Demo, **match: str) -> dict[str, Any]:
    return next(d for d in native_devices(demo) if all(d[k] == v for k, v in match.items()))


def open_device(page: Page, d: dict[str, Any], range_label: str) -> None:
    page.get_by_role("link", name=d["name"], exact=True).click()
    expect(page.get_by_role("heading", name=d["name"])).to_be_visible()
    page.get_by_label("Range").select_option(label=range_label)


def test_a_device_page_plots_a_week_of_history_each_phase_of_a_meter(
    page: Page, demo: Demo
) -> None:
    meter = device(demo, model="OMNIMETER-V4")
    sign_in(page, demo)
    open_device(page, meter, "Last week")
    # the week before the first start, at the meter's 15-minute cadence
    status = page.locator("#chart-status")
    expect(status).to_have_text(re.compile(r"^6[5-9]\d readings over the last week; 3 phases"))
    legend = page.locator("#chart .u-legend")
    for label in ("Power (W)", "Phase 1 (W)", "Phase 2 (W)", "Phase 3 (W)"):
        expect(legend).to_contain_text(label)
    days = page.get_by_role("table", name="Energy per day").locator("tbody tr")
    expect(
        days.get_by_role("cell", name=re.compile(r"^(?!0\.00)\d+\.\d\d kWh$")).first
    ).to_be_visible()
    assert 7 <= days.count() <= 8  # the calendar days the week touches


def test_a_water_heaters_page_plots_its_water_temperature(page: Page, demo: Demo) -> None:
    heater = device(demo, family="load_controller", name="Water heater (flowmeter)")
    sign_in(page, demo)
    open_device(page, heater, "Last 10 days")
    expect(page.locator("#chart-status")).to_have_text(
        re.compile(r"^6[5-9]\d readings over the last 10 days; [1-9]\d* relay change")
    )
    legend = page.locator("#chart .u-legend")
    expect(legend).to_contain_text("Water temperature (°C)")
    expect(legend).to_contain_text("Device temperature (°C)")  # the vendor's °F, in °C


def test_an_ffr_trip_run_from_the_grid_page_and_its_event_on_the_ffr_page(
    page: Page, demo: Demo
) -> None:
    heaters = [d for d in native_devices(demo) if d["family"] == "load_controller"]
    with api(demo) as c:
        for h in heaters:
            r = c.post(f"/api/v1/devices/{h['id']}/channels/0/switch", json={"action": "on"})
            assert r.status_code == 200, r.text
        group = {"name": "Heaters", "programme": "ercot-ffr", "tag": "water-heater",
                 "contracted_kw": 8}  # fmt: skip
        r = c.post("/api/v1/ffr/groups", json=group)
        assert r.status_code == 201, r.text
        assert sorted(r.json()["devices"]) == sorted(h["id"] for h in heaters)
    sign_in(page, demo)
    page.get_by_role("link", name="Grid", exact=True).click()
    rows = page.get_by_role("table", name="Power controllers").locator("tbody tr")
    expect(rows).to_have_count(len(heaters))
    for h in heaters:
        expect(rows.filter(has_text=h["name"])).to_contain_text("armed below 59.85 Hz")
        expect(page.get_by_role("switch", name=h["name"], exact=True)).to_be_checked()
    expect(page.locator("#grid-time")).to_contain_text("manual: it moves only when moved")
    page.get_by_label("Frequency (Hz)").fill("59.7")
    page.get_by_label("Back to nominal after (s)").fill("5")
    page.get_by_role("button", name="Set grid").click()
    expect(page.get_by_text("Grid set to 59.7 Hz for 5 s.")).to_be_visible()
    page.get_by_label("Move the clock by (s)").fill("1")
    page.get_by_role("button", name="Move clock").click()
    for h in heaters:  # tripped: the relay open, the page says so, live
        expect(rows.filter(has_text=h["name"])).to_contain_text("tripped")
        expect(page.get_by_role("switch", name=h["name"], exact=True)).not_to_be_checked()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "grid-tripped.png"), full_page=True)
    page.get_by_label("Move the clock by (s)").fill("10")
    page.get_by_role("button", name="Move clock").click()
    for h in heaters:  # the grid is back: the load restored
        expect(rows.filter(has_text=h["name"])).to_contain_text("armed below 59.85 Hz")
        expect(page.get_by_role("switch", name=h["name"], exact=True)).to_be_checked()
    page.get_by_label("Move the clock by (s)").fill("900")  # the logging window closes
    page.get_by_role("button", name="Move clock").click()
    expect(page.get_by_text("Clock moved 900 s.")).to_be_visible()

    page.get_by_role("link", name="FFR events", exact=True).click()
    groups = page.get_by_role("table", name="Groups")
    expect(groups.locator("tbody tr").filter(has_text="Heaters")).to_contain_text("8.00 kW")
    events = page.get_by_role("table", name="Events").locator("tbody tr")
    expect(events).to_have_count(1)
    with api(demo) as c:
        (listed,) = c.get("/api/v1/ffr/events").json()
        report = c.get(f"/api/v1/ffr/events/{listed['id']}").json()
    verdict = "compliant" if report["compliant"] else "not compliant"
    expect(events.first).to_contain_text(verdict)
    expect(events.first).to_contain_text("59.7 Hz")
    page.get_by_role("link", name=f"Evidence of event {listed['id']}").click()
    expect(
        page.get_by_role("heading", name=re.compile(rf"^Event {listed['id']}: Heaters"))
    ).to_be_visible()
    # 10 s before the crossing to 15 minutes after, every 100 ms
    expect(page.locator("#evidence-status")).to_have_text(
        re.compile(r"^91\d\d samples of frequency and the group's active power, every 100 ms")
    )
    legend = page.locator("#evidence .u-legend")
    expect(legend).to_contain_text("Active power (kW)")
    expect(legend).to_contain_text("Frequency (Hz)")
    devices = page.get_by_role("table", name="Devices in the event").locator("tbody tr")
    expect(devices).to_have_count(len(heaters))
    for reason in report["reasons"]:
        expect(page.get_by_role("listitem").filter(has_text=reason)).to_be_visible()


def test_vendor_credentials_are_issued_shown_once_and_revoked(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name=demo.credentials["account"]["email"]).click()
    expect(page.get_by_role("heading", name="Vendor API credentials")).to_be_visible()
    page.get_by_label("Kind").select_option(label="Power controller API token")
    page.get_by_label("Credential note").fill("heater script")
    page.get_by_role("button", name="Issue credential").click()
    shown = page.locator("#cred-value")
    expect(shown).to_contain_text("powercontroller.token")
    token = shown.locator("dt", has_text=re.compile(r"^token$")).locator("+ dd").inner_text()
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{demo.base_url}/v1/devices", headers=h).status_code == 200
    creds = page.get_by_role("table", name="Vendor API credentials")
    row = creds.locator("tbody tr").filter(has_text="heater script")
    expect(row).to_contain_text("active")
    page.get_by_role("button", name="Revoke credential heater script").click()
    expect(page.get_by_text('Credential "heater script" revoked.')).to_be_visible()
    expect(row).to_contain_text("revoked")
    assert httpx.get(f"{demo.base_url}/v1/devices", headers=h).status_code == 401


def test_the_new_pages_fit_a_phone(page: Page, demo: Demo) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, demo)
    for link, heading in (("Grid", "Grid"), ("FFR events", "FFR events")):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        # wide tables scroll in their own box; the page itself does not scroll sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, link
    page.get_by_role("link", name=demo.credentials["account"]["email"]).click()
    expect(page.get_by_role("heading", name="Vendor API credentials")).to_be_visible()
    expect(
        page.get_by_role("table", name="Vendor API credentials").locator("tbody tr").first
    ).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
