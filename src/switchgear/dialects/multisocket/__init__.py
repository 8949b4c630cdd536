"""The Legrand multisocket API: plug status by plant, behind an API gateway."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_MULTISOCKET_ID_TOKEN, KIND_MULTISOCKET_KEY
from switchgear.dialects import Dialect
from switchgear.dialects.multisocket.demo import demo_section, example, issue_id_token, issue_key
from switchgear.dialects.multisocket.routes import routes

DIALECT = Dialect(
    name="multisocket",
    routes=routes,
    demo_section=demo_section,
    example=example,
    issuers={KIND_MULTISOCKET_KEY: issue_key, KIND_MULTISOCKET_ID_TOKEN: issue_id_token},
)
