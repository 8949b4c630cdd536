"""Opaque bearer tokens `sg_<credential id>.<secret>`: O(1) lookup, hashed secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from switchgear.errors import InvalidCredential

PREFIX = "sg_"


def new_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is the right hash (no argon2 per request)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def compose(cred_id: str, secret: str) -> str:
    return f"{PREFIX}{cred_id}.{secret}"


def parse(token: str) -> tuple[str, str]:
    """(credential id, secret); InvalidCredential if it is not one of ours."""
    if not token.startswith(PREFIX):
        raise InvalidCredential("invalid token")
    cred_id, sep, secret = token[len(PREFIX) :].partition(".")
    if not sep or not cred_id or not secret:
        raise InvalidCredential("invalid token")
    return cred_id, secret


def matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(digest(secret), secret_hash)
