"""Auth: accounts' sign-in, and issuing, checking and revoking credentials from memory."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from switchgear.auth import jwt, passwords, tokens
from switchgear.auth.throttle import SignInThrottle
from switchgear.core.accounts import Credential
from switchgear.core.bus import NoPeers
from switchgear.core.clock import Clock, SystemClock
from switchgear.core.counters import Counters
from switchgear.core.model import ROLE_OPERATOR, ROLE_TENANT, Account, Json
from switchgear.core.ports import Batch, Peers, Store
from switchgear.errors import (
    BadPassword,
    CredentialExpired,
    CredentialNotFound,
    CredentialRevoked,
    Forbidden,
    InvalidCredential,
    InvalidInput,
    NotAuthenticated,
    RateLimited,
)
from switchgear.storedtext import NUL, storable

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
JWT_MARK = "jwt"  # secret_hash of a JWT credential: no opaque secret can match it
PARENT = "parent"  # attrs key: the credential a token was minted with
EPOCH = "auth_epoch"  # meta key a writer outside the server changes (switchgear users add)


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
    """Credentials are cached in memory (write-through), so checks never touch the database.

    Writes made by another process (the CLI) change the store's EPOCH; `follow()` reads
    that one value every few seconds and reloads when it moved, so a new credential
    works without a restart while an unknown token never costs a database read. Other
    API workers (`join`) are told of each change made here, and the call making it
    returns once they applied it: a token issued or revoked on one holds on all at once.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        secret_key: str,
        wall: Clock | None = None,
        hashes: passwords.HashPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        counters: Counters | None = None,
    ) -> None:
        self._store = store
        self._clock = clock  # token expiry: the virtual clock every face reports
        self._key = secret_key
        self._creds: dict[str, Credential] = {}
        self._accounts: dict[int, Account] = {}
        self._epoch: object = None
        # security windows: wall time; shared by workers when `counters` is the database's
        self._throttle = SignInThrottle(wall or SystemClock(), counters)
        self._hashes = hashes or passwords.HashPool()
        self._sleep = sleep
        # told of each revoked credential (open streams close with it)
        self.listeners: list[Callable[[Credential], None]] = []
        self._peers: Peers = NoPeers()

    def join(self, peers: Peers) -> None:
        """Share accounts' and credentials' changes with the other API workers."""
        self._peers = peers
        peers.on("auth.credential", self._peer_credential)
        peers.on("auth.revoked", self._peer_revoked)
        peers.on("auth.account", self._peer_account)

    async def _peer_credential(self, body: Json) -> None:
        """A credential issued by another worker: from the store into the cache."""
        if not isinstance(body, dict):
            return
        cred_id, account_id = str(body.get("id")), int(body.get("account_id") or 0)
        for cred in await self._store.credentials(account_id):
            cached = self._creds.get(cred.id)
            if cred.id == cred_id and (cached is None or cached.revoked_at is None):
                self._creds[cred.id] = cred

    async def _peer_revoked(self, body: Json) -> None:
        """Credentials another worker revoked: refused here too, and their streams end."""
        if not isinstance(body, dict):
            return
        at = float(body.get("at") or self._clock.now())
        for cred_id in body.get("ids") or ():
            cred = self._creds.get(str(cred_id))
            if cred is not None and cred.revoked_at is None:
                self._creds[cred.id] = replace(cred, revoked_at=at)
                for listener in self.listeners:
                    listener(self._creds[cred.id])

    async def _peer_account(self, body: Json) -> None:
        self._accounts = {a.id: a for a in await self._store.accounts()}

    async def load(self) -> None:
        """(Re)load accounts and credentials; a revocation seen on either side stands."""
        epoch = await self._store.meta(EPOCH)
        fresh = {c.id: c for c in await self._store.credentials()}
        for cid, cached in self._creds.items():
            stored = fresh.get(cid)
            if stored is None or (cached.revoked_at is not None and stored.revoked_at is None):
                fresh[cid] = cached  # issued or revoked here while the store was read
        self._creds = fresh
        self._accounts = {a.id: a for a in await self._store.accounts()}
        self._epoch = epoch

    async def refresh(self) -> bool:
        """Reload if another process changed accounts or credentials (one small read)."""
        if await self._store.meta(EPOCH) == self._epoch:
            return False
        await self.load()
        log.info("credentials reloaded: changed outside this process")
        return True

    async def follow(self, interval_s: float) -> None:
        """Refresh every `interval_s` wall seconds, forever (a runtime background task)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self._throttle.sweep()
                await self.refresh()
            except Exception:  # a database hiccup: keep serving from memory, try again
                log.warning("credential refresh failed", exc_info=True)

    async def announce(self) -> None:
        """Tell running servers that accounts or credentials changed (for the CLI)."""
        await self._store.commit(Batch(meta={EPOCH: secrets.token_hex(8)}))

    def close(self) -> None:
        self._hashes.close()

    # --- accounts -----------------------------------------------------------

    async def create_account(
        self, email: str, name: str, password: str, operator: bool = False
    ) -> Account:
        """A new account; the first one of a database is the operator, as is one asked for."""
        email, name = storable(email.strip().lower(), "email"), storable(name, "name")
        if not _EMAIL.match(email):
            raise InvalidInput("not an email address", field="email")
        if len(password) < 8:
            raise InvalidInput("password must have at least 8 characters", field="password")
        storable(password, "password")  # kept only as a hash, but no client could repeat it
        first = not await self._store.accounts()
        role = ROLE_OPERATOR if operator or first else ROLE_TENANT
        hashed = await self._hashes.hash(password)
        account = await self._store.add_account(email, name, hashed, role)
        self._accounts[account.id] = account
        log.info("account %s created (%s)", account.id, role)
        await self._peers.tell("auth.account", {"id": account.id})
        return account

    def account(self, account_id: int) -> Account | None:
        return self._accounts.get(account_id)

    def require_operator(self, cred: Credential) -> None:
        """Forbidden unless the credential's account is the operator."""
        account = self._accounts.get(cred.account_id)
        if account is None or not account.operator:
            raise Forbidden("only the operator may do this")

    async def login(self, email: str, password: str, client: str = "") -> Account:
        """The account for these credentials; BadPassword (same for unknown emails) otherwise.

        The attempt is counted before anything is awaited (SignInThrottle): too many
        failures from one address are refused with RateLimited; failures on one account
        from anywhere only slow its sign-ins down.
        """
        email = email.strip().lower()
        reservation = await self._throttle.reserve(email, client)
        if reservation.delay_s > 0:
            await self._sleep(reservation.delay_s)
        # no account's e-mail holds a NUL (refused above), and PostgreSQL cannot look one
        # up: such an e-mail is an unknown one, checked against the dummy hash as any is
        found = None if NUL in email else await self._store.account_by_email(email)
        try:
            ok = await self._hashes.verify(None if found is None else found[1], password)
        except RateLimited:  # too busy to check it: this attempt does not count
            await self._throttle.withdraw(reservation)
            raise
        if found is not None and ok:
            account, hashed = found
            await self._throttle.succeeded(reservation)
            self._accounts[account.id] = account
            if self._hashes.needs_rehash(hashed):
                new_hash = await self._hashes.hash(password)
                await self._store.set_password_hash(account.id, new_hash)
            return account
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
        parent: Credential | None = None,
    ) -> tuple[Credential, str]:
        """A new opaque token; the plaintext is returned once and only its hash is kept.

        A token minted with another (`parent`) expires no later than it and is revoked
        with it.
        """
        secret = tokens.new_secret()
        if parent is not None:
            attrs = {**(attrs or {}), PARENT: parent.id}
        cred = await self._add(
            account_id, kind, ttl_s, scopes, desc, attrs, tokens.digest(secret), parent
        )
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
        parent: Credential | None = None,
    ) -> Credential:
        """Store a new credential (write-through to the cache)."""
        now = self._clock.now()
        expires_at = None if ttl_s is None else now + ttl_s
        if parent is not None and parent.expires_at is not None:
            expires_at = (
                parent.expires_at if expires_at is None else min(expires_at, parent.expires_at)
            )
        cred = Credential(
            id=tokens.new_id(),
            account_id=account_id,
            kind=kind,
            secret_hash=secret_hash,
            created_at=now,
            expires_at=expires_at,
            scopes=tuple(scopes),
            desc=desc,
            attrs=dict(attrs or {}),
        )
        await self._store.add_credential(cred)
        self._creds[cred.id] = cred
        await self._peers.tell("auth.credential", {"id": cred.id, "account_id": account_id})
        log.debug("credential %s (%s) issued to account %s", cred.id, kind, account_id)
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
        ancestor, depth = cred.attrs.get(PARENT), 0
        while ancestor is not None and depth < 64:  # a child lives only while its parents do
            up = self._creds.get(ancestor)
            if up is None or up.revoked_at is not None:
                raise CredentialRevoked("token revoked")
            ancestor, depth = up.attrs.get(PARENT), depth + 1
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
        revoked = replace(cred, revoked_at=cred.revoked_at or now)
        told: list[str] = []
        for victim in [cred_id, *self._descendants(cred_id)]:
            gone = self._creds[victim]
            if gone.revoked_at is None:
                await self._store.revoke_credential(victim, now)
                self._creds[victim] = replace(gone, revoked_at=now)
                log.info("credential %s revoked", victim)
                told.append(victim)
                for listener in self.listeners:
                    listener(self._creds[victim])
        if told:  # answered once every other worker refuses them too
            await self._peers.tell("auth.revoked", {"ids": told, "at": now})
        return revoked

    def _descendants(self, cred_id: str) -> list[str]:
        """The tokens minted with this one, and with those, and so on."""
        found: list[str] = []
        frontier = {cred_id}
        while frontier:
            children = [c.id for c in self._creds.values() if c.attrs.get(PARENT) in frontier]
            children = [c for c in children if c not in found]
            found.extend(children)
            frontier = set(children)
        return found

    def list(self, account_id: int, kind: str | None = None) -> list[Credential]:
        return [
            c
            for c in self._creds.values()
            if c.account_id == account_id and (kind is None or c.kind == kind)
        ]
