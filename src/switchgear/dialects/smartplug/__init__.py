"""The smart-plug provider API: MClimate's provider API over a Shelly plug."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_SMARTPLUG_CLIENT
from switchgear.dialects import Dialect
from switchgear.dialects.smartplug.demo import demo_section, example, issue_client
from switchgear.dialects.smartplug.routes import routes

DIALECT = Dialect(
    name="smartplug",
    routes=routes,
    demo_section=demo_section,
    example=example,
    issuers={KIND_SMARTPLUG_CLIENT: issue_client},
)
