"""The multisocket strip twin: one relay and one metering point per socket."""

from __future__ import annotations

from switchgear.devices.twin import Twin


class StripTwin(Twin):
    """Sockets are channels of the generic firmware; their names and kinds come from the row."""
