"""The smart-MAIC Wi-Fi energy meter's local HTTP API, served by the meter twins."""

from __future__ import annotations

from switchgear.dialects import Dialect
from switchgear.dialects.meterhttp.demo import demo_section, example
from switchgear.dialects.meterhttp.routes import routes

DIALECT = Dialect(name="meterhttp", routes=routes, demo_section=demo_section, example=example)
