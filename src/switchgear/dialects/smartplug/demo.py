"""The smart-plug dialect's demo section, curl example, and client credentials."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.auth import tokens
from switchgear.auth.scopes import (
    KIND_SMARTPLUG_ACCESS,
    KIND_SMARTPLUG_CLIENT,
    KIND_SMARTPLUG_REFRESH,
)
from switchgear.auth.service import PARENT
from switchgear.core.accounts import Credential
from switchgear.core.model import Family, Json
from switchgear.dialects.smartplug.routes import ACCESS_TTL_S, REFRESH_TTL_S
from switchgear.errors import AuthError
from switchgear.runtime import Runtime


async def issue_client(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """OAuth client credentials for the account (the secret is shown once)."""
    cred, token = await rt.auth.issue(account_id, KIND_SMARTPLUG_CLIENT, None, desc=desc)
    _, secret = tokens.parse(token)
    return {"id": cred.id, "client_id": cred.id, "client_secret": secret}


def _valid(rt: Runtime, token: Json, kind: str, parent: Credential | None) -> Credential | None:
    """The live credential behind `token`, if it is of `kind` and minted with `parent`
    (a token of an earlier client, or of none, is not this client's)."""
    try:
        cred = rt.auth.authenticate(token if isinstance(token, str) else None, kind)
    except AuthError:
        return None
    wanted = None if parent is None else parent.id
    return cred if cred.attrs.get(PARENT) == wanted else None


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """Client, tokens and serials; tokens that expired since the last start are replaced.

    The tokens are minted as a login with the client mints them (the refresh token with
    the client, the access token with the refresh token), so revoking the client ends
    them, as it ends a login's.
    """
    s = dict(previous or {})
    client_token = tokens.compose(str(s.get("client_id")), str(s.get("client_secret")))
    client = _valid(rt, client_token, KIND_SMARTPLUG_CLIENT, None)
    if client is None:
        s.update(await issue_client(rt, account_id, "demo"))
        s.pop("id", None)
        client_token = tokens.compose(str(s["client_id"]), str(s["client_secret"]))
        client = rt.auth.authenticate(client_token, KIND_SMARTPLUG_CLIENT)
    attrs = {"client_id": client.id}
    refresh = _valid(rt, s.get("refresh_token"), KIND_SMARTPLUG_REFRESH, client)
    if refresh is None:
        refresh, s["refresh_token"] = await rt.auth.issue(
            account_id, KIND_SMARTPLUG_REFRESH, REFRESH_TTL_S, attrs=attrs, parent=client
        )
    if _valid(rt, s.get("access_token"), KIND_SMARTPLUG_ACCESS, refresh) is None:
        _, s["access_token"] = await rt.auth.issue(
            account_id, KIND_SMARTPLUG_ACCESS, ACCESS_TTL_S, attrs=attrs, parent=refresh
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
