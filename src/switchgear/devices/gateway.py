"""The Push3 gateway twin: online and reachable; it relays commands to its meters later."""

from __future__ import annotations

from switchgear.devices.twin import Twin


class GatewayTwin(Twin):
    """No relay and no meter of its own."""
