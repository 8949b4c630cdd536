"""A Push3 gateway with one Omnimeter behind it, and a key of their account, for the Push3 tests."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_PUSH3_KEY
from switchgear.core.model import Device
from tests.conftest import World

GATEWAY = "4016A0B1C2D3"


async def gateway_and_meter(w: World, address: str) -> str:
    """Add the gateway and the meter at `address` to account A: a Push3 key of A's."""
    for serial, model, attrs in ((GATEWAY, "PUSH3", {}),
                                 (address, "OMNIMETER-V4", {"gateway": GATEWAY})):  # fmt: skip
        await w.rt.add_device(
            Device(0, w.plug_a.account_id, serial, model, serial, w.rt.clock.now(), attrs=attrs)
        )
    await w.settle()
    _, key = await w.rt.auth.issue(w.plug_a.account_id, KIND_PUSH3_KEY, None)
    return key
