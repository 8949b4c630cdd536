"""Energy registers as a client reads them: integrated up to the moment of the read."""

from __future__ import annotations

from typing import Any

import pytest

from switchgear.core.model import Device
from switchgear.demo import seed
from switchgear.links.memory import LinkFault
from tests.conftest import World


async def meters(w: World, device_id: int) -> list[dict[str, Any]]:
    r = await w.client.get(f"/api/v1/devices/{device_id}", headers=w.auth())
    assert r.status_code == 200, r.text
    return list(r.json()["meters"])


async def advance(w: World, seconds: float) -> None:
    r = await w.client.post(
        "/api/v1/sim/clock/advance", json={"seconds": seconds}, headers=w.auth()
    )
    assert r.status_code == 200, r.text


async def load(w: World, device_id: int, channel: int, watts: float) -> None:
    r = await w.client.put(
        f"/api/v1/sim/devices/{device_id}/load",
        json={"channel": channel, "watts": watts},
        headers=w.auth(),
    )
    assert r.status_code == 200, r.text


async def plug_at_586_w(w: World) -> int:
    pid = w.plug_a.id
    await load(w, pid, 0, 586)
    r = await w.client.post(
        f"/api/v1/devices/{pid}/channels/0/switch", json={"action": "on"}, headers=w.auth()
    )
    assert r.status_code == 200, r.text
    await advance(w, 100)  # the next 900 s sample is far off
    return pid


async def test_a_plugs_register_counts_between_its_samples(world: World) -> None:
    pid = await plug_at_586_w(world)
    before = (await meters(world, pid))[0]["energy_wh"]
    await advance(world, 60)
    after = (await meters(world, pid))[0]["energy_wh"]
    assert after - before == pytest.approx(586 * 60 / 3600, abs=0.01)
    listed = await world.client.get("/api/v1/devices", headers=world.auth())
    row = next(d for d in listed.json() if d["id"] == pid)
    assert row["meters"][0]["energy_wh"] == pytest.approx(after, abs=0.01)


async def test_a_device_the_cloud_cannot_ask_now_carries_on_at_its_last_power(
    world: World,
) -> None:
    pid = await plug_at_586_w(world)
    world.rt.link.faults[pid] = LinkFault(delay_s=5)  # slow link: only the shadow is at hand
    before = (await meters(world, pid))[0]["energy_wh"]
    await advance(world, 60)
    after = (await meters(world, pid))[0]["energy_wh"]
    assert after - before == pytest.approx(586 * 60 / 3600, abs=0.01)


async def test_an_offline_devices_register_stays_where_it_was_last_heard(world: World) -> None:
    pid = await plug_at_586_w(world)
    r = await world.client.post(
        f"/api/v1/sim/devices/{pid}/online", json={"online": False}, headers=world.auth()
    )
    assert r.status_code == 200, r.text
    before = (await meters(world, pid))[0]["energy_wh"]
    await advance(world, 60)
    assert (await meters(world, pid))[0]["energy_wh"] == before


async def test_an_omnimeters_registers_count_between_its_samples(world: World) -> None:
    rt = world.rt
    meter = await rt.add_device(
        Device(0, world.plug_a.account_id, "000300000999", "OMNIMETER-V4", "omni",
               rt.clock.now(), attrs={"gateway": "4016FFFF0001"})
    )  # fmt: skip
    await load(world, meter.id, 2, 1200)  # line 3: no relay in its way
    await advance(world, 100)
    before = (await meters(world, meter.id))[2]["energy_wh"]
    await advance(world, 60)
    after = (await meters(world, meter.id))[2]["energy_wh"]
    assert after - before == pytest.approx(20.0, abs=0.01)


async def test_the_demo_fleet_starts_with_lifetime_registers_that_move_between_samples(
    world: World,
) -> None:
    rt = world.rt
    demo = await seed(rt)
    account = demo["accounts"][0]
    token = account["token"]
    fleet = {d.model: d for d in rt.engine.devices(account["id"])}

    async def registers() -> dict[str, list[float]]:
        out = {}
        for model in ("SHPLG-1", "LG-MULTI-4", "OMNIMETER-V4", "D101", "D103"):
            r = await world.client.get(
                f"/api/v1/devices/{fleet[model].id}", headers=world.auth(token)
            )
            out[model] = [m["energy_wh"] for m in r.json()["meters"]]
        return out

    before = await registers()
    assert before["D103"][0] > 25_000_000  # years of consumption, like the document's meter
    assert all(wh > 100_000 for model in before for wh in before[model][:1])
    d103 = fleet["D103"]
    query = f"/?page=getdata&devid={d103.serial}&devpass={d103.attrs['devpass']}"
    wh1 = int((await world.client.get(query)).json()["data"]["Wh1"]["value"])
    assert wh1 == pytest.approx(before["D103"][0], abs=1)
    await advance(world, 60)  # well before the next 900 s sample
    after = await registers()
    for model in ("SHPLG-1", "OMNIMETER-V4", "D101", "D103"):
        assert after[model][0] > before[model][0], model  # each drew power for 60 s
    assert after["LG-MULTI-4"][1] > before["LG-MULTI-4"][1]
    assert int((await world.client.get(query)).json()["data"]["Wh1"]["value"]) - wh1 in (9, 10)
    await advance(world, 900)  # a sample: its average power is the load's, not the lifetime's
    r = await world.client.get(
        f"/api/v1/devices/{fleet['D101'].id}/history", headers=world.auth(token)
    )
    updates = [s for s in r.json()["statuses"] if s["kind"] == "update" and s["reason"] == "auto"]
    assert updates and updates[-1]["data"]["power"] == pytest.approx(586, rel=0.01)
