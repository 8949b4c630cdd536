"""The multisocket dialect's demo section, curl example, keys and id tokens."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.auth.scopes import (
    KIND_MULTISOCKET_ID_TOKEN,
    KIND_MULTISOCKET_KEY,
    SCOPE_PLUG_READ,
    SCOPE_PLUG_WRITE,
)
from switchgear.core.model import Family, Json
from switchgear.dialects.multisocket.wire import sockets
from switchgear.errors import AuthError
from switchgear.runtime import Runtime

ID_TOKEN_TTL_S = 7 * 86_400.0


async def issue_key(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """An `Ocp-Apim-Subscription-Key` (shown once)."""
    cred, key = await rt.auth.issue(account_id, KIND_MULTISOCKET_KEY, None, desc=desc)
    return {"id": cred.id, "subscription_key": key}


async def issue_id_token(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """An OpenID Connect id token (JWT) with the plug.read and plug.write scopes."""
    cred, token = await rt.auth.issue_jwt(
        account_id, KIND_MULTISOCKET_ID_TOKEN, ID_TOKEN_TTL_S,
        (SCOPE_PLUG_READ, SCOPE_PLUG_WRITE), desc=desc,
    )  # fmt: skip
    return {"id": cred.id, "id_token": token, "expires_at": cred.expires_at}


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """Key, id token (replaced once expired), the plant and its plugs."""
    s = dict(previous or {})
    try:
        rt.auth.authenticate(str(s.get("subscription_key") or ""), KIND_MULTISOCKET_KEY)
    except AuthError:
        s["subscription_key"] = (await issue_key(rt, account_id, "demo"))["subscription_key"]
    try:
        rt.auth.authenticate_jwt(str(s.get("id_token") or ""), KIND_MULTISOCKET_ID_TOKEN)
    except AuthError:
        s["id_token"] = (await issue_id_token(rt, account_id, "demo"))["id_token"]
    strips = rt.engine.devices(account_id, Family.STRIP)
    s["plant_id"] = strips[0].attrs.get("plant_id") if strips else None
    s["plugs"] = [
        {"id": p.id, "name": p.name, "type": p.type}
        for d in strips
        for p in sockets(d, rt.engine.shadow(d.id))
    ]
    return s


def example(content: Mapping[str, Json]) -> str | None:
    s = content.get("multisocket")
    if not isinstance(s, dict) or not s.get("plugs"):
        return None
    return (
        f"curl -s -X POST '{content['base_url']}/multioutlet/plug/energy/addressLocation/plants/"
        f"{s['plant_id']}/parameter/type/value/outlet' "
        f"-H 'Ocp-Apim-Subscription-Key: {s['subscription_key']}' "
        f"-H 'Authorization: {s['id_token']}' -H 'Content-Type: application/json' "
        "--data-ascii '{\"status\": [true]}'"
    )
