"""The dashboard in a real browser: sign in, read the fleet, switch, live events, a plot."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.proc import Demo

pytestmark = pytest.mark.e2e


def sign_in(page: Page, demo: Demo, timeout: float = 5000) -> None:
    account = demo.credentials["account"]
    page.goto("/")  # the server's root leads to the dashboard
    expect(page).to_have_url(re.compile(r"/ui/"))
    page.get_by_label("Email").fill(account["email"])
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Devices")).to_be_visible(timeout=timeout)
    expect(page.get_by_text("Live updates: on")).to_be_visible()


def api(demo: Demo) -> httpx.Client:
    token = demo.credentials["account"]["token"]
    return httpx.Client(base_url=demo.base_url, headers={"Authorization": f"Bearer {token}"})


def native_devices(demo: Demo) -> list[dict[str, Any]]:
    with api(demo) as c:
        return list(c.get("/api/v1/devices").json())


def test_a_wrong_password_is_refused_and_sign_out_forgets_the_session(
    page: Page, demo: Demo, console: list[str]
) -> None:
    page.goto("/ui/")
    page.get_by_label("Email").fill(demo.credentials["account"]["email"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    expect(page.get_by_role("heading", name="Devices")).to_be_hidden()
    assert console == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]  # the browser's own note of the refused request; nothing else went wrong
    console.clear()
    sign_in(page, demo)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()  # the token went with the session: still signed out
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_the_fleet_lists_every_device_with_its_relays_and_filters(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    devices = native_devices(demo)
    rows = page.locator("#fleet tbody tr")
    expect(rows).to_have_count(len(devices))
    for d in devices:
        row = rows.filter(has=page.get_by_role("link", name=d["name"], exact=True))
        expect(row).to_contain_text(d["family"])
        expect(row).to_contain_text(d["model"])
        for ch in d["channels"]:
            name = d["name"] if len(d["channels"]) == 1 else f"{d['name']} {ch['name']}"
            control = row.get_by_role("switch", name=name, exact=True)
            (expect(control).to_be_checked if ch["on"] else expect(control).not_to_be_checked)()
    page.get_by_label("Family").select_option("meter")
    meters = [d for d in devices if d["family"] == "meter"]
    expect(rows).to_have_count(len(meters))
    expect(page.get_by_text(f"{len(meters)} of {len(devices)} devices")).to_be_visible()
    page.get_by_label("Family").select_option("")
    tag = next(t for d in devices for t in d["tags"])
    page.get_by_label("Tag", exact=True).select_option(tag)
    expect(rows).to_have_count(sum(tag in d["tags"] for d in devices))


def test_switching_a_plug_on_the_page_switches_the_device(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    control = page.get_by_role("switch", name=plug["name"], exact=True)
    was_on = plug["channels"][0]["on"]
    control.click()
    (expect(control).not_to_be_checked if was_on else expect(control).to_be_checked)()
    with api(demo) as c:
        now = c.get(f"/api/v1/devices/{plug['id']}").json()
    assert now["channels"][0]["on"] is (not was_on)


def test_a_switch_through_a_vendor_face_shows_live(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    sp = demo.credentials["smartplug"]
    serial = sp["serials"][0]
    plug = next(d for d in native_devices(demo) if d["serial"] == serial)
    control = page.get_by_role("switch", name=plug["name"], exact=True)
    was_on = plug["channels"][0]["on"]
    (expect(control).to_be_checked if was_on else expect(control).not_to_be_checked)()
    h = {"Authorization": f"Bearer {sp['access_token']}"}
    r = httpx.post(f"{demo.base_url}/provider/send", headers=h,
                   json={"serial_number": serial, "command": "switch_on_off",
                         "state": "off" if was_on else "on"})  # fmt: skip
    assert r.status_code == 200, r.text
    # no reload: the event stream carries it, within a second
    expected = expect(control).not_to_be_checked if was_on else expect(control).to_be_checked
    expected(timeout=1000)


def test_a_delayed_switch_shows_its_countdown(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    control = page.get_by_role("switch", name=plug["name"], exact=True)
    was_on = plug["channels"][0]["on"]
    page.get_by_label("Switch after (s)").fill("90")
    control.click()
    row = page.locator("#fleet tbody tr").filter(has=control)
    expect(row.locator(".pending")).to_have_text(re.compile(r"(on|off) in 1:(29|30)"))
    (expect(control).to_be_checked if was_on else expect(control).not_to_be_checked)()
    with api(demo) as c:
        assert c.post("/api/v1/sim/clock/advance", json={"seconds": 91}).status_code == 200
    (expect(control).not_to_be_checked if was_on else expect(control).to_be_checked)()
    expect(row.locator(".pending")).to_have_text("")


def test_an_offline_device_says_so(page: Page, demo: Demo) -> None:
    plug = next(d for d in native_devices(demo) if d["family"] == "strip")
    with api(demo) as c:
        c.post(f"/api/v1/sim/devices/{plug['id']}/online", json={"online": False})
        try:
            sign_in(page, demo)
            name = f"{plug['name']} {plug['channels'][0]['name']} (offline)"
            expect(page.get_by_role("switch", name=name, exact=True)).to_be_disabled()
        finally:
            c.post(f"/api/v1/sim/devices/{plug['id']}/online", json={"online": True})
    expect(page.get_by_role("switch", name=plug["name"] + " " + plug["channels"][0]["name"],
                            exact=True)).to_be_enabled()  # fmt: skip


def test_a_device_page_plots_its_power_from_history(page: Page, demo: Demo) -> None:
    with api(demo) as c:  # an hour of statuses at the meter's 15-minute cadence
        assert c.post("/api/v1/sim/clock/advance", json={"seconds": 3600}).status_code == 200
    sign_in(page, demo)
    meter = next(d for d in native_devices(demo) if d["model"] == "D103")
    page.get_by_role("link", name=meter["name"], exact=True).click()
    expect(page.get_by_role("heading", name=meter["name"])).to_be_visible()
    expect(page).to_have_url(re.compile(rf"#/devices/{meter['id']}$"))
    expect(page.locator("#chart canvas")).to_be_visible()
    status = page.locator("#chart-status")
    # the seeding switched the meter's relay on: a relay change marked on the time axis
    expect(status).to_have_text(
        re.compile(r"^[1-9]\d* readings over the last day; 3 phases; \d+ relay ch")
    )
    energy = page.get_by_role("table", name="Energy per day")
    expect(
        energy.get_by_role("cell", name=re.compile(r"^(?!0\.00)\d+\.\d\d kWh$")).first
    ).to_be_visible()
    page.get_by_label("Range").select_option(label="Last hour")
    expect(status).to_have_text(re.compile(r"^[1-9]\d* readings over the last hour(;|$)"))
    expect(page.get_by_role("switch", name=meter["name"], exact=True)).to_be_visible()
    page.get_by_role("link", name="All devices").click()
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()


def test_a_channels_settings_are_edited_on_its_device_page(page: Page, demo: Demo) -> None:
    strip = next(d for d in native_devices(demo) if d["family"] == "strip")
    sign_in(page, demo)
    page.get_by_role("link", name=strip["name"], exact=True).click()
    page.get_by_label("Channel", exact=True).select_option(label="Outlet 3")
    expect(page.get_by_label("Power-on state")).to_have_value(
        strip["channels"][2]["settings"]["power_on"]
    )
    page.get_by_label("Power-on state").select_option(label="On")
    page.get_by_label("Auto off after (s)").fill("600")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text(f"{strip['name']}: settings saved.")).to_be_visible()
    with api(demo) as c:
        channels = c.get(f"/api/v1/devices/{strip['id']}").json()["channels"]
    assert channels[2]["settings"]["power_on"] == "on"
    assert channels[2]["settings"]["auto_off_s"] == 600
    assert channels[0]["settings"] == strip["channels"][0]["settings"]  # only that channel


def test_a_fleet_of_ten_thousand_stays_usable(page: Page, demo: Demo) -> None:
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    fleet = [
        {**plug, "id": 100_000 + i, "serial": f"SPG{i:07d}", "name": f"Plug {i:05d}",
         "tags": ["even" if i % 2 == 0 else "odd"]}
        for i in range(10_000)
    ]  # fmt: skip
    body = json.dumps(fleet)
    page.route(
        re.compile(r"/api/v1/devices$"),
        lambda route: route.fulfill(status=200, content_type="application/json", body=body),
    )
    sign_in(page, demo, timeout=30_000)  # Playwright's interception moves 6 MB slowly
    rows = page.locator("#fleet tbody tr")
    expect(page.get_by_text("10000 devices", exact=True)).to_be_visible()
    expect(rows).to_have_count(50)  # a page at a time
    expect(page.get_by_text("Page 1 of 200")).to_be_visible()
    page.get_by_role("button", name="Next page").click()
    expect(rows.first).to_contain_text("Plug 00050", timeout=1000)
    page.get_by_label("Tag", exact=True).select_option("odd")
    expect(page.get_by_text("5000 of 10000 devices")).to_be_visible(timeout=1000)
    page.get_by_label("Name contains").fill("Plug 09999")
    expect(rows).to_have_count(1, timeout=1000)
    expect(page.get_by_role("switch", name="Plug 09999", exact=True)).to_be_visible()


def test_a_power_controllers_page_plots_its_temperature_beside_power(
    page: Page, demo: Demo
) -> None:
    with api(demo) as c:  # at least one status at the heater's 15-minute cadence
        assert c.post("/api/v1/sim/clock/advance", json={"seconds": 1800}).status_code == 200
    heater = next(d for d in native_devices(demo) if d["family"] == "load_controller")
    sign_in(page, demo)
    page.get_by_role("link", name=heater["name"], exact=True).click()
    expect(page.get_by_text(re.compile(r"^[1-9]\d* readings over the last day"))).to_be_visible()
    legend = page.locator("#chart .u-legend")
    expect(legend).to_contain_text("Power (W)")
    expect(legend).to_contain_text("Device temperature (°C)")  # the vendor's °F, in °C


def test_tokens_are_made_shown_once_and_revoked_on_the_account_page(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name=demo.credentials["account"]["email"]).click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.get_by_role("cell", name="this session")).to_be_visible()
    page.get_by_label("Description").fill("backup script")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-value")
    expect(secret).to_have_text(re.compile(r"^sg_"))
    token = secret.inner_text()
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{demo.base_url}/api/v1/account", headers=h).status_code == 200
    page.get_by_role("button", name="Revoke backup script").click()
    expect(page.get_by_text('Token "backup script" revoked.')).to_be_visible()
    assert httpx.get(f"{demo.base_url}/api/v1/account", headers=h).status_code == 401
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()  # still signed in


def test_the_simulation_panel_moves_a_twin(page: Page, demo: Demo) -> None:
    meter = next(d for d in native_devices(demo) if d["model"] == "D101")
    sign_in(page, demo)
    page.get_by_role("link", name=meter["name"], exact=True).click()
    facts = page.locator("#device-facts")
    page.get_by_label("Load (W)").fill("321")
    page.get_by_role("button", name="Set load").click()
    expect(facts).to_contain_text("Power now321 W")
    page.get_by_role("button", name="Take offline").click()
    control = page.get_by_role("switch", name=f"{meter['name']} (offline)", exact=True)
    expect(control).to_be_disabled()
    expect(facts).to_contain_text("offline")
    page.get_by_role("button", name="Bring online").click()
    expect(page.get_by_role("switch", name=meter["name"], exact=True)).to_be_enabled()
    with api(demo) as c:
        d = c.get(f"/api/v1/devices/{meter['id']}").json()
    assert d["online"] is True and d["meters"][0]["power_w"] == 321


def test_revoking_this_sessions_own_token_signs_the_page_out(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name=demo.credentials["account"]["email"]).click()
    mine = page.locator("#tokens tbody tr").filter(has_text="this session")
    expect(mine).to_have_count(1)
    token = page.evaluate("Object.values(sessionStorage).map(JSON.parse)[0].token")
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{demo.base_url}/api/v1/account", headers=h).status_code == 200
    mine.get_by_role("button", name=re.compile(r"^Revoke ")).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert httpx.get(f"{demo.base_url}/api/v1/account", headers=h).status_code == 401


def test_a_device_added_after_sign_in_shows_in_the_fleet_without_a_reload(
    page: Page, demo: Demo
) -> None:
    sign_in(page, demo)
    rows = page.locator("#fleet tbody tr")
    expect(rows).to_have_count(len(native_devices(demo)))
    with api(demo) as c:  # another client (the CLI, a script) adds a plug
        r = c.post("/api/v1/devices:import", content="serial,model,name,tags\n"
                   "SPG7770001,SHPLG-1,Hall lamp,hall\n",
                   headers={"Content-Type": "text/csv"})  # fmt: skip
        assert r.status_code < 300, r.text
    expect(page.get_by_role("link", name="Hall lamp", exact=True)).to_be_visible()
    expect(page.get_by_role("switch", name="Hall lamp", exact=True)).to_be_enabled()
    expect(rows).to_have_count(len(native_devices(demo)))


def test_a_power_controller_added_while_the_grid_page_is_open_shows_there(
    page: Page, demo: Demo
) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name="Grid", exact=True).click()
    rows = page.get_by_role("table", name="Power controllers").locator("tbody tr")
    heaters = [d for d in native_devices(demo) if d["family"] == "load_controller"]
    expect(rows).to_have_count(len(heaters))
    with api(demo) as c:  # another client (the CLI, a script) adds a power controller
        r = c.post("/api/v1/devices:import", content="serial,model,name,tags\n"
                   "PC-GRID01-001,power-controller-v10,Loft heater,water-heater\n",
                   headers={"Content-Type": "text/csv"})  # fmt: skip
        assert r.status_code < 300, r.text
    row = rows.filter(has=page.get_by_role("link", name="Loft heater", exact=True))
    expect(row).to_be_visible()  # no leaving the page and coming back
    expect(row).to_contain_text("not enabled")
    expect(page.get_by_role("switch", name="Loft heater", exact=True)).to_be_enabled()
    expect(rows).to_have_count(len(heaters) + 1)


def test_a_device_that_cannot_be_shown_leaves_no_other_device_on_screen(
    page: Page, demo: Demo, console: list[str]
) -> None:
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    foreign = demo.credentials["other_account"]["smartplug"]["serials"][0]
    sign_in(page, demo)
    page.get_by_role("link", name=plug["name"], exact=True).click()
    expect(page.get_by_role("heading", name=plug["name"], exact=True)).to_be_visible()
    with httpx.Client(base_url=demo.base_url) as c:  # a device id of the other account
        h = {"Authorization": f"Bearer {demo.credentials['other_account']['token']}"}
        other = next(d for d in c.get("/api/v1/devices", headers=h).json()
                     if d["serial"] == foreign)  # fmt: skip
    page.evaluate(f"location.hash = '#/devices/{other['id']}'")
    expect(page.get_by_text("This device cannot be shown: device not found")).to_be_visible()
    # not the plug's page under another device's address, with its switch still live
    expect(page.get_by_role("heading", name=plug["name"], exact=True)).to_be_hidden()
    expect(page.locator("#device-view")).to_be_hidden()
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    assert console == [
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    ]
    console.clear()


def test_a_countdown_follows_the_servers_clock_from_live_events(page: Page, demo: Demo) -> None:
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    sign_in(page, demo)
    control = page.get_by_role("switch", name=plug["name"], exact=True)
    pending = page.locator("#fleet tbody tr").filter(has=control).locator(".pending")
    switch = f"/api/v1/devices/{plug['id']}/channels/0/switch"
    with api(demo) as c:  # another client switches the plug on for ten minutes
        assert c.post(switch, json={"action": "off"}).status_code == 200
        assert c.post(switch, json={"action": "on", "duration": 600}).status_code == 200
        expect(pending).to_have_text("off in 10:00")
        # and moves the manual clock: the page hears of it only from the devices' events
        assert c.post("/api/v1/sim/clock/advance", json={"seconds": 240}).status_code == 200
        load = {"channel": 0, "watts": 60}
        assert c.put(f"/api/v1/sim/devices/{plug['id']}/load", json=load).status_code < 300
    expect(pending).to_have_text("off in 6:00")
    expect(control).to_be_checked()


def test_an_offline_devices_power_is_its_last_known_with_its_age(page: Page, demo: Demo) -> None:
    meter = next(d for d in native_devices(demo) if d["model"] == "D101")
    plug = next(d for d in native_devices(demo) if d["family"] == "plug")
    with api(demo) as c:
        assert c.put(f"/api/v1/sim/devices/{meter['id']}/load",
                     json={"channel": 0, "watts": 120}).status_code < 300  # fmt: skip
        c.post(f"/api/v1/sim/devices/{meter['id']}/online", json={"online": False})
        try:
            assert c.post("/api/v1/sim/clock/advance", json={"seconds": 300}).status_code == 200
            sign_in(page, demo)
            link = page.get_by_role("link", name=meter["name"], exact=True)
            power = page.locator("#fleet tbody tr").filter(has=link).locator("td").nth(5)
            expect(power).to_have_text("last known 120 W, 5 min ago")
            # the clock moves on (another device's event tells the page): so does the age
            assert c.post("/api/v1/sim/clock/advance", json={"seconds": 120}).status_code == 200
            assert c.put(f"/api/v1/sim/devices/{plug['id']}/load",
                         json={"channel": 0, "watts": 5}).status_code < 300  # fmt: skip
            expect(power).to_have_text("last known 120 W, 7 min ago")
            link.click()
            facts = page.locator("#device-facts")
            expect(facts).to_contain_text("Power now—")
            expect(facts).to_contain_text("Last known power120 W, 7 min ago")
        finally:
            c.post(f"/api/v1/sim/devices/{meter['id']}/online", json={"online": True})
    expect(facts).to_contain_text("Power now120 W")
    expect(facts).not_to_contain_text("Last known")
