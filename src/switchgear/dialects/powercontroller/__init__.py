"""The Automate Green power controller API: JWT tokens, devices, FFR, statuses."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_POWERCONTROLLER_TOKEN
from switchgear.dialects import Dialect
from switchgear.dialects.powercontroller.demo import demo_section, example, issue_token
from switchgear.dialects.powercontroller.pending import start
from switchgear.dialects.powercontroller.routes import routes

DIALECT = Dialect(
    name="powercontroller",
    routes=routes,
    demo_section=demo_section,
    example=example,
    issuers={KIND_POWERCONTROLLER_TOKEN: issue_token},
    start=start,
)
