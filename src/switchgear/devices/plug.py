"""The SHPLG-1 smart plug twin: one relay, metering, over-power cut-off, flip-back timers."""

from __future__ import annotations

from switchgear.devices.twin import Twin


class PlugTwin(Twin):
    """Everything a plug does is the generic relay firmware; the dialect adds its wire."""
