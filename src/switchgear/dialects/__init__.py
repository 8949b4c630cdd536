"""Vendor API dialects: each package parses, authenticates, calls core, and renders its wire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from switchgear.core.model import Json

if TYPE_CHECKING:
    from switchgear.runtime import Runtime

DemoSection = Callable[["Runtime", int, Mapping[str, Json] | None], Awaitable[dict[str, Json]]]
IssueCredential = Callable[["Runtime", int, str], Awaitable[dict[str, Json]]]


@dataclass(frozen=True)
class Dialect:
    """What a dialect contributes to the app, the demo and the native credential routes."""

    name: str
    routes: Callable[[], list[BaseRoute]]
    # The dialect's section of the demo credentials file for one account: created on the
    # first start, refreshed (e.g. an expired access token) on later ones.
    demo_section: DemoSection
    # One working curl example, from the credentials file's content.
    example: Callable[[Mapping[str, Json]], str | None]
    # Credential kinds a user may create through the native API / CLI, and how.
    issuers: Mapping[str, IssueCredential] = field(default_factory=dict)
    # Background work the face needs once the runtime runs (retries, streams).
    start: Callable[[Runtime], Awaitable[None]] | None = None


def dialects() -> list[Dialect]:
    """Every dialect, in the order their routes are mounted."""
    from switchgear.dialects import meterhttp, multisocket, powercontroller, push3, smartplug

    return [
        smartplug.DIALECT,
        multisocket.DIALECT,
        powercontroller.DIALECT,
        push3.DIALECT,
        meterhttp.DIALECT,  # last: it answers on `/`
    ]
