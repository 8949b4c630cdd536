"""The power controller dialect's demo section, curl example and tokens."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.auth.scopes import KIND_POWERCONTROLLER_TOKEN
from switchgear.core.model import Family, Json
from switchgear.dialects.powercontroller.ids import device_id
from switchgear.errors import AuthError
from switchgear.runtime import Runtime

DEMO_TOKEN_TTL_S = 365 * 86_400.0


async def issue_token(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """A token (JWT, one year) as `POST /v1/signin` would give."""
    cred, token = await rt.auth.issue_jwt(
        account_id, KIND_POWERCONTROLLER_TOKEN, DEMO_TOKEN_TTL_S, desc=desc
    )
    return {"id": cred.id, "token": token, "expires_at": cred.expires_at}


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """A working token (replaced once expired or revoked), the controllers' ids and serials."""
    s = dict(previous or {})
    try:
        rt.auth.authenticate_jwt(str(s.get("token") or ""), KIND_POWERCONTROLLER_TOKEN)
    except AuthError:
        s["token"] = (await issue_token(rt, account_id, "demo"))["token"]
    controllers = rt.engine.devices(account_id, Family.LOAD_CONTROLLER)
    s["device_ids"] = [device_id(d) for d in controllers]
    s["serials"] = [d.serial for d in controllers]
    return s


def example(content: Mapping[str, Json]) -> str | None:
    s = content.get("powercontroller")
    if not isinstance(s, dict) or not s.get("device_ids"):
        return None
    return (
        f"curl -s -X POST {content['base_url']}/v1/devices/{s['device_ids'][0]}/command "
        f"-H 'Authorization: Bearer {s['token']}' -H 'Content-Type: application/json' "
        '-d \'{"command": {"name": "off_for", "time": 60}}\''
    )
