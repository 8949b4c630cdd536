"""Simulated plugs' MQTT ids across a fleet: each device its own broker session."""

from __future__ import annotations

import pytest

from switchgear.core.model import Device
from switchgear.links import twinwire


@pytest.mark.xfail(
    strict=True,
    reason="links/twinwire.py: a plug's MQTT id is 6 hex digits of a digest of its serial, so"
    " a 10,000-plug fleet holds about 6 pairs of twins under one client id (each takes the"
    " other's broker session); the import refuses such a serial, a fleet seeded otherwise"
    " does not",
)
def test_ten_thousand_plugs_have_ten_thousand_mqtt_ids() -> None:
    serials = [f"SPG{k:07d}" for k in range(10_000)]
    ids = {twinwire.mqtt_id(Device(0, 1, s, "SHPLG-1", s, 0.0)) for s in serials}
    assert len(ids) == len(serials)
