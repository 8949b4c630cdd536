"""Energy meter twins (smart-MAIC D101/D103, EKM Omnimeter): metering points and relays."""

from __future__ import annotations

from switchgear.devices.twin import Twin


class MeterTwin(Twin):
    """Phase metering per the catalogue row; the load relay (if any) cuts the metered load."""
