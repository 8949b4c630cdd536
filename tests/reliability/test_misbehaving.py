"""Devices that misbehave: off the network, late, answering twice, never answering.

Each command ends cleanly in the face's documented error (503 on the power controller
API and the native API, `success: false` on a Push3 channel), nothing is half-applied,
and the device works again once it behaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchgear.app import create_app
from switchgear.core.model import Device
from switchgear.demo import credentials, seed
from switchgear.links.memory import LinkFault
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.reliability.conftest import BASE, Estate, push3_answers

TIMEOUT_S = 0.3


@pytest.fixture
async def shaky() -> AsyncIterator[Estate]:
    """The demo estate with a short command timeout and an instant Push3 gateway."""
    import httpx

    settings = Settings(database_url="memory://", speed=0, command_timeout_s=TIMEOUT_S,
                        secret_key="test-secret-key-of-at-least-32-bytes",
                        push3_gateway_delay_s=0)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        creds = await credentials(rt, await seed(rt), BASE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Estate(rt, client, creds)


def controller(e: Estate) -> Device:
    return e.rt.engine.devices(1, None)[2]  # the first power controller


def gateway(e: Estate) -> Device:
    return next(d for d in e.rt.engine.devices(1) if d.model == "PUSH3")


async def pc_command(e: Estate, name: str) -> tuple[int, dict[str, object]]:
    pc = e.section("powercontroller")
    r = await e.client.post(f"/v1/devices/{pc['device_ids'][0]}/command",
                            json={"command": {"name": name}},
                            headers={"Authorization": f"Bearer {pc['token']}"})  # fmt: skip
    return r.status_code, r.json()


async def native_toggle(e: Estate, device: Device) -> tuple[int, dict[str, object]]:
    native = {"Authorization": f"Bearer {e.creds['account']['token']}"}
    r = await e.client.post(f"/api/v1/devices/{device.id}/channels/0/switch",
                            json={"action": "toggle"}, headers=native)  # fmt: skip
    return r.status_code, r.json()


def relay(e: Estate, device: Device) -> bool:
    twin = e.rt.link.fleet.get(device.id)
    assert twin is not None
    return twin.channels[0].on


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        (LinkFault(lost=True), "never answers"),
        (LinkFault(delay_s=TIMEOUT_S * 3), "answers after the deadline"),
    ],
)
async def test_no_answer_in_time_is_503_and_nothing_applied_then_it_recovers(
    shaky: Estate, fault: LinkFault, why: str
) -> None:
    e = shaky
    pc = controller(e)
    assert relay(e, pc) is True
    e.rt.link.faults[pc.id] = fault
    status, body = await pc_command(e, "off")
    assert (status, body) == (503, {"message": "Device unreachable"}), why
    status, _ = await native_toggle(e, pc)
    assert status == 504
    await e.rt.advance(60)
    assert relay(e, pc) is True  # neither command arrived
    del e.rt.link.faults[pc.id]
    assert (await pc_command(e, "off"))[0] == 200
    assert relay(e, pc) is False


async def test_a_late_answer_within_the_deadline_is_a_success(shaky: Estate) -> None:
    e = shaky
    pc = controller(e)
    e.rt.link.faults[pc.id] = LinkFault(delay_s=TIMEOUT_S / 3)
    status, body = await pc_command(e, "off")
    assert status == 200 and body["responseCodes"] == [103]
    assert relay(e, pc) is False


async def test_a_command_delivered_twice_is_applied_once(shaky: Estate) -> None:
    e = shaky
    pc = controller(e)
    e.rt.link.faults[pc.id] = LinkFault(duplicate=True)
    before = relay(e, pc)
    status, _ = await native_toggle(e, pc)
    assert status == 200
    assert relay(e, pc) is (not before)  # toggled once, not twice
    page = await e.rt.engine.history(1, [pc.id], 0, e.rt.clock.now() + 1)
    toggles = [r for r in page.records if r.kind.value == "relay" and r.reason == "api"]
    assert len(toggles) == 1


async def test_a_device_that_drops_off_after_applying_reports_it_when_back(shaky: Estate) -> None:
    e = shaky
    pc = controller(e)
    e.rt.link.faults[pc.id] = LinkFault(drop_after=True)
    status, body = await pc_command(e, "off")
    assert (status, body) == (503, {"message": "Device unreachable"})
    assert relay(e, pc) is False  # applied whole before it dropped off
    del e.rt.link.faults[pc.id]
    assert (await pc_command(e, "on"))[0] == 503  # still off the network
    e.rt.link.fleet.get(pc.id).set_online(True)  # type: ignore[union-attr]
    assert (await pc_command(e, "on"))[0] == 200
    assert e.rt.engine.shadow(pc.id).channels[0].on is True


async def test_an_offline_device_is_503_and_an_offline_meter_is_success_false(
    shaky: Estate,
) -> None:
    e = shaky
    pc = controller(e)
    e.rt.link.fleet.get(pc.id).set_online(False)  # type: ignore[union-attr]
    assert (await pc_command(e, "off"))[0] == 503
    p3 = e.section("push3")
    meter = next(d for d in e.rt.engine.devices(1) if d.serial == p3["meters"][0])
    e.rt.link.fleet.get(meter.id).set_online(False)  # type: ignore[union-attr]
    body = {"command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
            "params": {"relay": "Relay_1", "status": "open"}}  # fmt: skip
    sent = (await e.client.post(f"/sendCommand?key={p3['key']}", json=body)).json()
    await e.rt.advance(1)
    await e.rt.journal.flush()
    [answer] = await push3_answers(e, sent)
    assert answer["success"] is False
    assert answer["error"] == f"meter {p3['meters'][0]} did not respond"
    assert relay(e, meter) is True  # relay 1 stayed closed


@pytest.mark.parametrize("fault", [LinkFault(lost=True), LinkFault(delay_s=TIMEOUT_S * 3)])
async def test_a_command_the_gateway_does_not_take_waits_for_it(
    shaky: Estate, fault: LinkFault
) -> None:
    e = shaky
    gw = gateway(e)
    e.rt.link.faults[gw.id] = fault
    p3 = e.section("push3")
    body = {"command": "SetRelay", "target": "meter", "target_id": p3["meters"][0],
            "params": {"relay": "Relay_2", "status": "open"}}  # fmt: skip
    r = await e.client.post(f"/sendCommand?key={p3['key']}", json=body)
    assert r.status_code == 200
    assert await push3_answers(e, r.json()) == []  # it waits on the gateway's stream
    meter = next(d for d in e.rt.engine.devices(1) if d.serial == p3["meters"][0])
    del e.rt.link.faults[gw.id]
    for _ in range(10):  # the gateway takes it on its next poll, then runs it
        await e.rt.advance(1)
        await asyncio.sleep(0.01)
    answers = await push3_answers(e, r.json())
    assert [a["success"] for a in answers] == [True]  # one answer, though it was sent twice
    assert e.rt.link.fleet.get(meter.id).channels[1].on is False  # type: ignore[union-attr]
