"""Credentials of the vendor faces (client ids, keys): create, list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.api.openapi import answers
from switchgear.api.schemas import Strict, Text, iso
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.dialects import dialects
from switchgear.errors import InvalidInput

router = APIRouter(tags=["credentials"])


class CredentialRequest(Strict):
    kind: str = Field(description="e.g. smartplug.client")
    desc: Text = Field(default="", max_length=200)


def issuable() -> dict[str, Any]:
    return {kind: issue for d in dialects() for kind, issue in d.issuers.items()}


@router.post("/credentials", status_code=201)
async def create_credential(
    rt: RuntimeDep, cred: CredentialDep, body: CredentialRequest
) -> dict[str, Any]:
    """A new credential of a vendor face; its secret is shown in this answer only."""
    issuers = issuable()
    if body.kind not in issuers:
        raise InvalidInput(f"kind must be one of {', '.join(sorted(issuers))}", field="kind")
    made = await issuers[body.kind](rt, cred.account_id, body.desc)
    return {"kind": body.kind, **made}


@router.get("/credentials")
async def list_credentials(
    rt: RuntimeDep, cred: CredentialDep, kind: str | None = None
) -> list[dict[str, Any]]:
    """The account's vendor-face credentials (never their secrets)."""
    return [
        {
            "id": c.id,
            "kind": c.kind,
            "desc": c.desc,
            "created_at": iso(c.created_at),
            "expires_at": iso(c.expires_at),
            "revoked": c.revoked_at is not None,
        }
        for c in rt.auth.list(cred.account_id, kind)
        if c.kind != KIND_NATIVE
    ]


@router.delete("/credentials/{credential_id}", status_code=204, responses=answers(404))
async def revoke_credential(rt: RuntimeDep, cred: CredentialDep, credential_id: str) -> Response:
    """Revoke one of the account's credentials; it is refused from then on."""
    await rt.auth.revoke(cred.account_id, credential_id)
    return Response(status_code=204)
