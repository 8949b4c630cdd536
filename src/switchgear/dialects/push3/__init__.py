"""The EKM Push3 Device Settings API: commands to meters, answers on streams."""

from __future__ import annotations

from switchgear.auth.scopes import KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from switchgear.dialects import Dialect
from switchgear.dialects.push3 import channels, outbox
from switchgear.dialects.push3.demo import demo_section, example, issue_gateway_key, issue_key
from switchgear.dialects.push3.routes import routes
from switchgear.runtime import Runtime


async def start(rt: Runtime) -> None:
    """The response channels, and the commands that wait for their gateways."""
    await channels.start(rt)
    await outbox.start(rt)


DIALECT = Dialect(
    name="push3",
    routes=routes,
    demo_section=demo_section,
    example=example,
    issuers={KIND_PUSH3_KEY: issue_key, KIND_PUSH3_GATEWAY_KEY: issue_gateway_key},
    start=start,
)
