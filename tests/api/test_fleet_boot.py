"""A restart of a large fleet: the start returns once its first twins are up, the rest follow."""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchgear.core.model import Action, Configure, Device, PowerOn, SettingsPatch, Switch
from switchgear.runtime import Runtime
from switchgear.settings import Settings

SECRET = "test-secret-key-of-at-least-32-bytes"
FLEET = 30


async def test_twins_past_the_inline_count_boot_after_the_server_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    rt = await Runtime.start(Settings(database_url=url, speed=0, secret_key=SECRET))
    account = await rt.auth.create_account("f@example.com", "F", "correct horse F")
    made = await rt.add_devices([
        Device(0, account.id, f"SPG-BOOT-{i:03d}", "SHPLG-1", f"plug {i}", rt.clock.now())
        for i in range(FLEET)
    ])  # fmt: skip
    first, last = made[0], made[-1]
    patch = SettingsPatch(power_on=PowerOn.LAST)
    await rt.engine.command(account.id, last.id, Configure(patch, 0))
    await rt.engine.command(account.id, last.id, Switch(Action.ON, 0))
    await rt.stop()

    settings = Settings(database_url=url, speed=0, secret_key=SECRET, boot_inline_twins=10)
    rt = await Runtime.start(settings)
    try:
        assert len(rt.link.fleet) == 10  # the start returns with the first ten twins up
        assert not rt.engine.shadow(last.id).online  # a late one has not reported yet
        late = [t for t in rt.tasks if t.get_name() == "fleet-boot"]
        await asyncio.wait_for(asyncio.gather(*late), 30)  # the rest boot in the background
        assert len(rt.link.fleet) == FLEET
        assert all(rt.engine.shadow(d.id).online for d in made)
        # a late twin booted from its NVRAM, as after a power cut: its power-on state
        # "last" brought its relay back on; the first twin's default left it off
        assert rt.engine.shadow(last.id).channels[0].on is True
        assert rt.engine.shadow(first.id).channels[0].on is False
        rec = await rt.engine.command(account.id, last.id, Switch(Action.OFF, 0))
        assert rec.state.value == "done"
    finally:
        await rt.stop()
