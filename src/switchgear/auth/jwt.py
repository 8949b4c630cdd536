"""HS256 JWTs for the faces that use them; only HS256 is ever accepted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt as pyjwt

from switchgear.core.accounts import Credential
from switchgear.errors import CredentialExpired, InvalidCredential

ALGORITHM = "HS256"


def issue(secret_key: str, cred: Credential, extra: Mapping[str, Any] | None = None) -> str:
    claims: dict[str, Any] = {
        "jti": cred.id,
        "sub": str(cred.account_id),
        "kind": cred.kind,
        "iat": int(cred.created_at),
        **(extra or {}),
    }
    if cred.expires_at is not None:
        claims["exp"] = int(cred.expires_at)
    return pyjwt.encode(claims, secret_key, algorithm=ALGORITHM)


def verify(secret_key: str, token: str, kind: str | tuple[str, ...], now: float) -> dict[str, Any]:
    """The claims of a valid token of `kind`; expiry is checked against `now` (the clock)."""
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            # time claims are checked below against the injected clock, not the wall clock
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["jti", "sub", "kind", "iat"],
            },
        )
    except pyjwt.PyJWTError:
        raise InvalidCredential("invalid token") from None
    kinds = (kind,) if isinstance(kind, str) else kind
    if claims["kind"] not in kinds:
        raise InvalidCredential("invalid token")
    exp = claims.get("exp")
    if exp is not None and now >= float(exp):
        raise CredentialExpired("token expired")
    return claims
