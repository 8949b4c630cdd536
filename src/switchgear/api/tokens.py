"""Native API tokens: create (by password or by token), list, revoke; the caller's account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, Security

from switchgear.api.deps import CredentialDep, RuntimeDep, bearer_scheme, bearer_token
from switchgear.api.openapi import answers
from switchgear.api.schemas import AccountOut, TokenOut, TokenRequest, iso
from switchgear.auth.clientaddr import client_address
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.accounts import Credential
from switchgear.errors import AccountNotFound, InvalidInput

router = APIRouter(tags=["tokens"])

DEFAULT_TTL_S = 30 * 86_400.0
# For the OpenAPI document: these routes take a token (create_token takes either).
secured = [Security(bearer_scheme)]


def token_out(c: Credential, token: str | None = None) -> TokenOut:
    return TokenOut(
        id=c.id,
        desc=c.desc,
        created_at=iso(c.created_at),
        expires_at=iso(c.expires_at),
        revoked=c.revoked_at is not None,
        token=token,
    )


@router.post("/tokens", response_model=TokenOut, status_code=201, responses=answers(401, 429))
async def create_token(
    rt: RuntimeDep,
    body: TokenRequest,
    request: Request,
) -> TokenOut:
    """A new token: sign in with email and password, or present a valid token (the new
    token then expires no later than that one and is revoked with it)."""
    if body.email is not None or body.password is not None:
        if not body.email or not body.password:
            raise InvalidInput("email and password go together", field="password")
        client = client_address(request, rt.settings.trusted_proxies)
        account = await rt.auth.login(body.email, body.password, client=client)
        account_id, parent = account.id, None
    else:
        parent = rt.auth.authenticate(bearer_token(request), KIND_NATIVE)
        account_id = parent.account_id
    cred, token = await rt.auth.issue(
        account_id, KIND_NATIVE, body.expires_in or DEFAULT_TTL_S, desc=body.desc, parent=parent
    )
    return token_out(cred, token)


@router.get("/tokens", response_model=list[TokenOut], dependencies=secured)
async def list_tokens(rt: RuntimeDep, cred: CredentialDep) -> list[TokenOut]:
    """The account's native tokens (never their secrets)."""
    return [token_out(c) for c in rt.auth.list(cred.account_id, KIND_NATIVE)]


@router.delete("/tokens/{token_id}", status_code=204, responses=answers(404), dependencies=secured)
async def revoke_token(rt: RuntimeDep, cred: CredentialDep, token_id: str) -> Response:
    """Revoke one of the account's tokens, and every token minted with it."""
    await rt.auth.revoke(cred.account_id, token_id)
    return Response(status_code=204)


@router.get("/account", response_model=AccountOut, responses=answers(404), dependencies=secured)
async def account(rt: RuntimeDep, cred: CredentialDep) -> AccountOut:
    """The caller's account and its role: `operator` or `tenant`."""
    found = rt.auth.account(cred.account_id)
    if found is None:
        raise AccountNotFound("account not found")
    return AccountOut(id=found.id, email=found.email, name=found.name, role=found.role)
