"""The water-heater power controller twin (FFR, capacity and power limits come with its dialect)."""

from __future__ import annotations

from switchgear.devices.twin import Twin


class PowerControllerTwin(Twin):
    """A 30 A relay on a thermostat load; reports water temperature."""
