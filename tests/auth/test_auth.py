"""Credentials as a client meets them: sign-in, tokens, expiry, revocation, throttling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher

from switchgear.auth.passwords import HashPool
from switchgear.auth.scopes import KIND_NATIVE, KIND_SMARTPLUG_ACCESS
from switchgear.auth.service import Auth, secret_key
from switchgear.core.clock import VirtualClock
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
from switchgear.storage import MemoryStore

T0 = 1_750_000_000.0
# a cheap argon2id for tests whose subject is not the hash's cost


def cheap() -> HashPool:
    return HashPool(hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def auth() -> AsyncIterator[Auth]:
    store = MemoryStore()
    wall = VirtualClock(start=T0, speed=0)  # the throttle's wall time, moved by the test
    a = Auth(
        store,
        VirtualClock(start=T0, speed=0),
        await secret_key(store, None),
        wall,
        cheap(),
        no_sleep,
    )
    await a.load()
    yield a
    a.close()


def wall_of(auth: Auth) -> VirtualClock:
    clock = auth._throttle._wall
    assert isinstance(clock, VirtualClock)
    return clock


def clock_of(auth: Auth) -> VirtualClock:
    clock = auth._clock
    assert isinstance(clock, VirtualClock)
    return clock


async def test_passwords_are_stored_as_argon2id_and_sign_in_works(auth: Auth) -> None:
    account = await auth.create_account("Ann@Example.com", "Ann", "correct horse")
    stored = await auth._store.account_by_email("ann@example.com")
    assert stored is not None and stored[1].startswith("$argon2id$")
    assert "correct horse" not in stored[1]
    assert (await auth.login("ann@example.com", "correct horse")).id == account.id
    with pytest.raises(BadPassword) as wrong:
        await auth.login("ann@example.com", "wrong")
    with pytest.raises(BadPassword) as unknown:
        await auth.login("nobody@example.com", "wrong")
    assert str(wrong.value) == str(unknown.value)


@pytest.mark.parametrize(
    ("email", "name", "password", "field"),
    [("nope", "x", "long enough", "email"), ("a@b.io", "x", "short", "password"),
     # PostgreSQL keeps no NUL in text, and a NUL typed into a password no client can repeat
     ("a\x00@b.io", "x", "long enough", "email"), ("a@b.io", "Ann\x00", "long enough", "name"),
     ("a@b.io", "x", "long\x00enough", "password")],
)  # fmt: skip
async def test_account_input_is_validated(
    auth: Auth, email: str, name: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        await auth.create_account(email, name, password)
    assert err.value.field == field
    if "\x00" in email + name + password:
        assert "NUL" in err.value.message
    assert await auth._store.accounts() == []


async def test_a_nul_at_sign_in_is_a_wrong_password_never_a_store_lookup(auth: Auth) -> None:
    await auth.create_account("ann@example.com", "Ann", "correct horse")
    asked: list[str] = []
    lookup = auth._store.account_by_email

    async def spy(email: str):  # type: ignore[no-untyped-def]
        asked.append(email)
        return await lookup(email)

    auth._store.account_by_email = spy  # type: ignore[method-assign]
    for email, password in [("ann@example.com\x00", "correct horse"),
                            ("ann\x00@example.com", "correct horse"),
                            ("ann@example.com", "correct horse\x00")]:  # fmt: skip
        with pytest.raises(BadPassword, match="Invalid username and password combination"):
            await auth.login(email, password)
    assert all("\x00" not in e for e in asked)  # PostgreSQL would refuse the query (a 500)
    assert (await auth.login("ann@example.com", "correct horse")).email == "ann@example.com"


async def test_tokens_round_trip_expire_and_revoke(auth: Auth) -> None:
    a = await auth.create_account("a@x.io", "A", "password-a")
    cred, token = await auth.issue(a.id, KIND_NATIVE, 60.0)
    assert auth.authenticate(token, KIND_NATIVE).account_id == a.id
    assert cred.secret_hash not in token  # only the hash is kept
    with pytest.raises(InvalidCredential):
        auth.authenticate(token, KIND_SMARTPLUG_ACCESS)  # wrong kind
    with pytest.raises(InvalidCredential):
        auth.authenticate(token[:-2] + "xx", KIND_NATIVE)  # tampered secret
    with pytest.raises(NotAuthenticated):
        auth.authenticate(None, KIND_NATIVE)
    with pytest.raises(InvalidCredential):
        auth.authenticate("garbage", KIND_NATIVE)
    clock_of(auth).set(T0 + 60)
    with pytest.raises(CredentialExpired):
        auth.authenticate(token, KIND_NATIVE)
    _, token2 = await auth.issue(a.id, KIND_NATIVE, None)
    cred2 = auth.authenticate(token2, KIND_NATIVE)
    await auth.revoke(a.id, cred2.id)
    with pytest.raises(CredentialRevoked):
        auth.authenticate(token2, KIND_NATIVE)


async def test_another_accounts_credential_is_not_found(auth: Auth) -> None:
    a = await auth.create_account("a@x.io", "A", "password-a")
    b = await auth.create_account("b@x.io", "B", "password-b")
    cred, token = await auth.issue(a.id, KIND_NATIVE, None)
    with pytest.raises(CredentialNotFound):
        await auth.revoke(b.id, cred.id)
    with pytest.raises(CredentialNotFound):
        await auth.revoke(b.id, "does-not-exist")
    assert auth.authenticate(token, KIND_NATIVE).account_id == a.id
    assert [c.id for c in auth.list(a.id)] == [cred.id] and auth.list(b.id) == []


async def test_jwts_accept_only_hs256_with_our_key(auth: Auth) -> None:
    a = await auth.create_account("a@x.io", "A", "password-a")
    cred, token = await auth.issue_jwt(a.id, "multisocket.id_token", 3600.0, ("plug.read",))
    got = auth.authenticate_jwt(token, "multisocket.id_token")
    assert got.id == cred.id
    auth.require_scope(got, "plug.read")
    with pytest.raises(Forbidden):
        auth.require_scope(got, "plug.write")
    claims = pyjwt.decode(token, options={"verify_signature": False})
    none_token = pyjwt.encode(claims, key=None, algorithm="none")
    forged = pyjwt.encode(claims, "not-our-key-but-long-enough-for-hs256!", algorithm="HS256")
    for bad in (none_token, forged, token + "x"):
        with pytest.raises(InvalidCredential):
            auth.authenticate_jwt(bad, "multisocket.id_token")
    with pytest.raises(InvalidCredential):
        auth.authenticate_jwt(token, KIND_NATIVE)
    await auth.revoke(a.id, cred.id)
    with pytest.raises(CredentialRevoked):
        auth.authenticate_jwt(token, "multisocket.id_token")
    clock_of(auth).set(T0 + 3600)
    with pytest.raises(CredentialExpired):
        auth.authenticate_jwt(token, "multisocket.id_token")


async def test_repeated_failed_sign_ins_are_throttled_then_recover(auth: Auth) -> None:
    await auth.create_account("a@x.io", "A", "password-a")
    for _ in range(5):
        with pytest.raises(BadPassword):
            await auth.login("a@x.io", "wrong", client="10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await auth.login("a@x.io", "password-a", client="10.0.0.1")
    assert 0 < limited.value.retry_after <= 300
    # another address is not locked out by this one
    assert (await auth.login("a@x.io", "password-a", client="10.0.0.2")).email == "a@x.io"
    clock_of(auth).set(T0 + 3600)  # the virtual clock does not lift it: it runs on wall time
    with pytest.raises(RateLimited):
        await auth.login("a@x.io", "password-a", client="10.0.0.1")
    wall_of(auth).set(T0 + 301)
    assert (await auth.login("a@x.io", "password-a", client="10.0.0.1")).email == "a@x.io"


async def test_secrets_never_reach_the_logs(auth: Auth, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = await auth.create_account("a@x.io", "A", "hunter2-password")
    _, token = await auth.issue(a.id, KIND_NATIVE, None)
    _, jwt_token = await auth.issue_jwt(a.id, "multisocket.id_token", 60.0)
    with pytest.raises(BadPassword):
        await auth.login("a@x.io", "wrong-password-xyz")
    text = caplog.text
    assert caplog.records  # something was logged
    for secret in ("hunter2-password", "wrong-password-xyz", token, token.split(".")[1], jwt_token):
        assert secret not in text


async def test_the_signing_key_is_generated_once_and_kept() -> None:
    store = MemoryStore()
    first = await secret_key(store, None)
    assert len(first) > 40 and await secret_key(store, None) == first
    assert await secret_key(store, "configured") == "configured"
