"""Auth: accounts' sign-in, and issuing, checking and revoking credentials from memory."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from switchgear.auth import jwt, passwords, tokens
from switchgear.auth.ratelimit import SlidingWindow
from switchgear.core.accounts import Credential
from switchgear.core.clock import Clock
from switchgear.core.model import Account
from switchgear.core.ports import Batch, Store
from switchgear.errors import (
    BadPassword,
    CredentialExpired,
    CredentialNotFound,
    CredentialRevoked,
    Forbidden,
    InvalidCredential,
    InvalidInput,
    NotAuthenticated,
)

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
JWT_MARK = "jwt"  # secret_hash of a JWT credential: no opaque secret can match it
SIGNIN_FAILURES = 5  # per account and per (account, address) ...
SIGNIN_WINDOW_S = 300.0  # ... within this window, then RateLimited


async def secret_key(store: Store, configured: str | None) -> str:
    """The configured signing key, or one generated once and kept in the store."""
    if configured:
        return configured
    key = await store.meta("secret_key")
    if isinstance(key, str) and key:
        return key
    key = secrets.token_urlsafe(48)
    await store.commit(Batch(meta={"secret_key": key}))
    return key


class Auth:
    """Credentials are cached in memory (write-through), so checks never touch the database."""

    def __init__(self, store: Store, clock: Clock, secret_key: str) -> None:
        self._store = store
        self._clock = clock
        self._key = secret_key
        self._creds: dict[str, Credential] = {}
        self._by_address = SlidingWindow(SIGNIN_FAILURES, SIGNIN_WINDOW_S, clock)
        self._by_account = SlidingWindow(SIGNIN_FAILURES * 4, SIGNIN_WINDOW_S, clock)
        # told of each revoked credential (open streams close with it)
        self.listeners: list[Callable[[Credential], None]] = []

    async def load(self) -> None:
        self._creds = {c.id: c for c in await self._store.credentials()}

    # --- accounts -----------------------------------------------------------

    async def create_account(self, email: str, name: str, password: str) -> Account:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidInput("not an email address", field="email")
        if len(password) < 8:
            raise InvalidInput("password must have at least 8 characters", field="password")
        account = await self._store.add_account(email, name, passwords.hash_password(password))
        log.info("account %s created", account.id)
        return account

    async def login(self, email: str, password: str, client: str = "") -> Account:
        """The account for these credentials; BadPassword (same for unknown emails) otherwise.

        Repeated failures for an account, or for an account from one address, are
        refused with RateLimited until the window passes.
        """
        email = email.strip().lower()
        self._by_address.check((email, client))
        self._by_account.check(email)
        found = await self._store.account_by_email(email)
        if found is None:
            passwords.verify_dummy(password)
        elif passwords.verify_password(found[1], password):
            account, hashed = found
            if passwords.needs_rehash(hashed):
                await self._store.set_password_hash(account.id, passwords.hash_password(password))
            self._by_address.reset((email, client))
            return account
        self._by_address.hit((email, client))
        self._by_account.hit(email)
        log.info("failed sign-in from %s", client or "unknown address")
        raise BadPassword("Invalid username and password combination")

    # --- credentials --------------------------------------------------------

    async def issue(
        self,
        account_id: int,
        kind: str,
        ttl_s: float | None,
        scopes: tuple[str, ...] = (),
        desc: str = "",
        attrs: Mapping[str, str] | None = None,
    ) -> tuple[Credential, str]:
        """A new opaque token; the plaintext is returned once and only its hash is kept."""
        secret = tokens.new_secret()
        cred = await self._add(account_id, kind, ttl_s, scopes, desc, attrs, tokens.digest(secret))
        return cred, tokens.compose(cred.id, secret)

    async def issue_jwt(
        self,
        account_id: int,
        kind: str,
        ttl_s: float | None,
        scopes: tuple[str, ...] = (),
        desc: str = "",
        claims: Mapping[str, Any] | None = None,
    ) -> tuple[Credential, str]:
        """A new HS256 JWT whose `jti` is the stored (revocable) credential."""
        cred = await self._add(account_id, kind, ttl_s, scopes, desc, None, JWT_MARK)
        return cred, jwt.issue(self._key, cred, {"scope": " ".join(scopes), **(claims or {})})

    async def _add(
        self,
        account_id: int,
        kind: str,
        ttl_s: float | None,
        scopes: tuple[str, ...],
        desc: str,
        attrs: Mapping[str, str] | None,
        secret_hash: str,
    ) -> Credential:
        """Store a new credential (write-through to the cache)."""
        now = self._clock.now()
        cred = Credential(
            id=tokens.new_id(),
            account_id=account_id,
            kind=kind,
            secret_hash=secret_hash,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s,
            scopes=tuple(scopes),
            desc=desc,
            attrs=dict(attrs or {}),
        )
        await self._store.add_credential(cred)
        self._creds[cred.id] = cred
        log.info("credential %s (%s) issued to account %s", cred.id, kind, account_id)
        return cred

    def authenticate(self, token: str | None, kind: str | tuple[str, ...]) -> Credential:
        """The live credential behind an opaque token of `kind`, from memory."""
        if not token:
            raise NotAuthenticated("no credential given")
        cred_id, secret = tokens.parse(token)
        cred = self._creds.get(cred_id)
        if (
            cred is None
            or cred.secret_hash == JWT_MARK
            or not tokens.matches(secret, cred.secret_hash)
        ):
            raise InvalidCredential("invalid token")
        return self._check(cred, kind)

    def authenticate_jwt(self, token: str | None, kind: str | tuple[str, ...]) -> Credential:
        """The live credential behind a JWT of `kind` (signature, expiry, revocation)."""
        if not token:
            raise NotAuthenticated("no credential given")
        claims = jwt.verify(self._key, token, kind, self._clock.now())
        cred = self._creds.get(str(claims["jti"]))
        if cred is None or str(cred.account_id) != claims["sub"]:
            raise InvalidCredential("invalid token")
        return self._check(cred, kind)

    def _check(self, cred: Credential, kind: str | tuple[str, ...]) -> Credential:
        kinds = (kind,) if isinstance(kind, str) else kind
        if cred.kind not in kinds:
            raise InvalidCredential("invalid token")
        if cred.revoked_at is not None:
            raise CredentialRevoked("token revoked")
        if cred.expires_at is not None and self._clock.now() >= cred.expires_at:
            raise CredentialExpired("token expired")
        return cred

    @staticmethod
    def require_scope(cred: Credential, scope: str) -> None:
        if scope not in cred.scopes:
            raise Forbidden(f"missing scope {scope}")

    async def revoke(self, account_id: int, cred_id: str) -> Credential:
        """Revoke one of the account's credentials; another account's is 'not found'."""
        cred = self._creds.get(cred_id)
        if cred is None or cred.account_id != account_id:
            raise CredentialNotFound("token not found")
        now = self._clock.now()
        await self._store.revoke_credential(cred_id, now)
        revoked = replace(cred, revoked_at=now)
        self._creds[cred_id] = revoked
        log.info("credential %s revoked", cred_id)
        for listener in self.listeners:
            listener(revoked)
        return revoked

    def list(self, account_id: int, kind: str | None = None) -> list[Credential]:
        return [
            c
            for c in self._creds.values()
            if c.account_id == account_id and (kind is None or c.kind == kind)
        ]
