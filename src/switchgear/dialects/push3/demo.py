"""The Push3 dialect's demo section, curl example, and keys."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.auth.scopes import KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from switchgear.core.model import Family, Json
from switchgear.devices.ekm import DEFAULT_PASSWORD
from switchgear.errors import AuthError
from switchgear.runtime import Runtime


async def issue_key(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """An account key: every gateway and meter of the account (shown once)."""
    cred, key = await rt.auth.issue(account_id, KIND_PUSH3_KEY, None, desc=desc)
    return {"id": cred.id, "key": key}


async def issue_gateway_key(rt: Runtime, account_id: int, desc: str) -> dict[str, Json]:
    """A gateway key for the account's first gateway: only that gateway's meters."""
    gateways = rt.engine.devices(account_id, Family.GATEWAY)
    if not gateways:
        return {"error": "the account has no gateway"}
    serial = gateways[0].serial
    cred, key = await rt.auth.issue(
        account_id, KIND_PUSH3_GATEWAY_KEY, None, desc=desc, attrs={"gateway": serial}
    )
    return {"id": cred.id, "key": key, "gateway": serial}


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """The account key, the gateway and its meters' addresses, and the meter password."""
    s = dict(previous or {})
    try:
        rt.auth.authenticate(str(s.get("key") or ""), KIND_PUSH3_KEY)
    except AuthError:
        s["key"] = (await issue_key(rt, account_id, "demo"))["key"]
    gateways = rt.engine.devices(account_id, Family.GATEWAY)
    s["gateway"] = gateways[0].serial if gateways else None
    meters = [d for d in rt.engine.devices(account_id, Family.METER) if "gateway" in d.attrs]
    s["meters"] = [d.serial for d in meters]
    s["meter_password"] = (
        meters[0].attrs.get("meter_password", DEFAULT_PASSWORD) if meters else None
    )
    return s


def example(content: Mapping[str, Json]) -> str | None:
    s = content.get("push3")
    if not isinstance(s, dict) or not s.get("meters"):
        return None
    return (
        f"curl -s -X POST '{content['base_url']}/sendCommand?key={s['key']}' "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"command": "SetRelay", "target": "meter", "target_id": "{s["meters"][0]}", '
        '"params": {"relay": "Relay_1", "status": "close", "duration": 1, '
        f'"meter_password": "{s["meter_password"]}"}}}}\''
    )
