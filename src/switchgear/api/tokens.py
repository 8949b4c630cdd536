"""Native API tokens: create (by password or by token), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from switchgear.api.deps import CredentialDep, RuntimeDep, bearer_token
from switchgear.api.schemas import TokenOut, TokenRequest, iso
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.accounts import Credential
from switchgear.errors import InvalidInput

router = APIRouter(tags=["tokens"])

DEFAULT_TTL_S = 30 * 86_400.0


def token_out(c: Credential, token: str | None = None) -> TokenOut:
    return TokenOut(
        id=c.id,
        desc=c.desc,
        created_at=iso(c.created_at),
        expires_at=iso(c.expires_at),
        revoked=c.revoked_at is not None,
        token=token,
    )


@router.post("/tokens", response_model=TokenOut, status_code=201)
async def create_token(
    rt: RuntimeDep,
    body: TokenRequest,
    request: Request,
) -> TokenOut:
    """A new token: sign in with email and password, or present a valid token."""
    if body.email is not None or body.password is not None:
        if not body.email or not body.password:
            raise InvalidInput("email and password go together", field="password")
        client = request.client.host if request.client else ""
        account = await rt.auth.login(body.email, body.password, client=client)
        account_id = account.id
    else:
        account_id = rt.auth.authenticate(bearer_token(request), KIND_NATIVE).account_id
    cred, token = await rt.auth.issue(
        account_id, KIND_NATIVE, body.expires_in or DEFAULT_TTL_S, desc=body.desc
    )
    return token_out(cred, token)


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(rt: RuntimeDep, cred: CredentialDep) -> list[TokenOut]:
    """The account's native tokens (never their secrets)."""
    return [token_out(c) for c in rt.auth.list(cred.account_id, KIND_NATIVE)]


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(rt: RuntimeDep, cred: CredentialDep, token_id: str) -> Response:
    """Revoke one of the account's tokens; it is refused from then on."""
    await rt.auth.revoke(cred.account_id, token_id)
    return Response(status_code=204)
