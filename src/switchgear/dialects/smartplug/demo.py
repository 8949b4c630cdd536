"""The smart-plug dialect's demo section, curl example, and client credentials."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.auth import tokens
from switchgear.auth.scopes import (
    KIND_SMARTPLUG_ACCESS,
    KIND_SMARTPLUG_CLIENT,
    KIND_SMARTPLUG_REFRESH,
)
from switchgear.core.model import Family, Json
from switchgear.dialects.smartplug.routes import ACCESS_TTL_S, REFRESH_TTL_S
from switchgear.errors import AuthError
from switchgear.runtime import Runtime


async def issue_client(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """OAuth client credentials for the account (the secret is shown once)."""
    cred, token = await rt.auth.issue(account_id, KIND_SMARTPLUG_CLIENT, None, desc=desc)
    _, secret = tokens.parse(token)
    return {"id": cred.id, "client_id": cred.id, "client_secret": secret}


def _works(rt: Runtime, token: Json, kind: str) -> bool:
    try:
        rt.auth.authenticate(token if isinstance(token, str) else None, kind)
    except AuthError:
        return False
    return True


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """Client, tokens and serials; tokens that expired since the last start are replaced."""
    s = dict(previous or {})
    client = tokens.compose(str(s.get("client_id")), str(s.get("client_secret")))
    if not _works(rt, client, KIND_SMARTPLUG_CLIENT):
        s.update(await issue_client(rt, account_id, "demo"))
        s.pop("id", None)
    attrs = {"client_id": str(s["client_id"])}
    if not _works(rt, s.get("refresh_token"), KIND_SMARTPLUG_REFRESH):
        _, s["refresh_token"] = await rt.auth.issue(
            account_id, KIND_SMARTPLUG_REFRESH, REFRESH_TTL_S, attrs=attrs
        )
    if not _works(rt, s.get("access_token"), KIND_SMARTPLUG_ACCESS):
        _, s["access_token"] = await rt.auth.issue(
            account_id, KIND_SMARTPLUG_ACCESS, ACCESS_TTL_S, attrs=attrs
        )
    s["serials"] = [d.serial for d in rt.engine.devices(account_id, Family.PLUG)]
    return s


def example(content: Mapping[str, Json]) -> str | None:
    section = content.get("smartplug")
    if not isinstance(section, dict) or not section.get("serials"):
        return None
    return (
        f"curl -s -X POST {content['base_url']}/provider/send "
        f"-H 'Authorization: Bearer {section['access_token']}' "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"serial_number": "{section["serials"][0]}", '
        '"command": "switch_on_off", "state": "on"}\''
    )
