"""Round 2 attacks on sign-in and credentials, tried against Auth directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher

from switchgear.auth.passwords import HashPool
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.auth.service import Auth, secret_key
from switchgear.auth.throttle import ACCOUNT_MAX_DELAY_S, ADDRESS_FAILURES
from switchgear.core.clock import VirtualClock
from switchgear.errors import (
    BadPassword,
    CredentialRevoked,
    Forbidden,
    InvalidCredential,
    RateLimited,
)
from switchgear.storage import MemoryStore

T0 = 1_750_000_000.0
# a cheap argon2id for tests whose subject is not the hash's cost


def cheap() -> HashPool:
    return HashPool(hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class CountingStore(MemoryStore):
    """A MemoryStore that counts the reads an authentication could cost."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def credentials(self, account_id: int | None = None):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().credentials(account_id)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def auth(sleeps: Sleeps) -> AsyncIterator[Auth]:
    store = CountingStore()
    wall = VirtualClock(start=T0, speed=0)
    a = Auth(
        store, VirtualClock(start=T0, speed=0), await secret_key(store, None), wall, cheap(), sleeps
    )
    await a.load()
    yield a
    a.close()


async def test_a_concurrent_burst_meets_the_limit_one_by_one(auth: Auth) -> None:
    await auth.create_account("a@x.io", "A", "password-a")
    tries = [auth.login("a@x.io", "wrong", client="10.0.0.9") for _ in range(120)]
    tries.append(auth.login("a@x.io", "password-a", client="10.0.0.9"))
    results = await asyncio.gather(*tries, return_exceptions=True)
    verified = [r for r in results if isinstance(r, BadPassword)]
    assert len(verified) == 5  # the per-(account, address) limit, not 120
    assert isinstance(results[-1], RateLimited)  # the right one came too late


async def test_one_address_is_throttled_across_every_email(auth: Auth) -> None:
    await auth.create_account("real@x.io", "Real", "password-real")
    for i in range(ADDRESS_FAILURES):
        with pytest.raises(BadPassword):
            await auth.login(f"junk{i}@x.io", "wrong", client="10.6.6.6")
    with pytest.raises(RateLimited):
        await auth.login("real@x.io", "password-real", client="10.6.6.6")
    assert (await auth.login("real@x.io", "password-real", client="10.0.0.1")).email == "real@x.io"


async def test_failures_from_everywhere_slow_an_account_down_but_never_lock_it(
    auth: Auth, sleeps: Sleeps
) -> None:
    await auth.create_account("victim@x.io", "V", "password-victim")
    await auth.login("victim@x.io", "password-victim", client="192.0.2.1")  # the usual place
    for i in range(100):  # a botnet: one guess per address
        with pytest.raises(BadPassword):
            await auth.login("victim@x.io", "wrong", client=f"10.1.{i // 250}.{i % 250}")
    assert sleeps.delays and max(sleeps.delays) == ACCOUNT_MAX_DELAY_S
    sleeps.delays.clear()
    # the owner still gets in: at once from where they signed in before, slowed elsewhere
    assert (await auth.login("victim@x.io", "password-victim", client="192.0.2.1")).email
    assert sleeps.delays == []
    assert (await auth.login("victim@x.io", "password-victim", client="198.51.100.7")).email
    assert sleeps.delays == [ACCOUNT_MAX_DELAY_S]


async def test_a_child_token_never_outlives_its_parent(auth: Auth) -> None:
    a = await auth.create_account("a@x.io", "A", "password-a")
    parent, _ = await auth.issue(a.id, KIND_NATIVE, 3600.0)
    child, child_token = await auth.issue(a.id, KIND_NATIVE, 10 * 365 * 86_400.0, parent=parent)
    grandchild, grandchild_token = await auth.issue(a.id, KIND_NATIVE, None, parent=child)
    assert child.expires_at == parent.expires_at == grandchild.expires_at
    await auth.revoke(a.id, parent.id)
    for token in (child_token, grandchild_token):
        with pytest.raises(CredentialRevoked):
            auth.authenticate(token, KIND_NATIVE)
    stored = {c.id: c for c in await auth._store.credentials()}
    assert stored[child.id].revoked_at is not None  # in the store, too: a restart keeps it
    assert stored[grandchild.id].revoked_at is not None


async def test_the_first_account_is_the_operator_and_others_are_tenants(auth: Auth) -> None:
    first = await auth.create_account("op@x.io", "Op", "password-op")
    tenant = await auth.create_account("t@x.io", "T", "password-t")
    second_op = await auth.create_account("op2@x.io", "Op2", "password-op2", operator=True)
    assert (first.role, tenant.role, second_op.role) == ("operator", "tenant", "operator")
    t_cred, _ = await auth.issue(tenant.id, KIND_NATIVE, 60.0)
    with pytest.raises(Forbidden):
        auth.require_operator(t_cred)
    op_cred, _ = await auth.issue(second_op.id, KIND_NATIVE, 60.0)
    auth.require_operator(op_cred)


async def test_credentials_written_elsewhere_are_seen_without_a_restart(auth: Auth) -> None:
    store = auth._store
    assert isinstance(store, CountingStore)
    cli = Auth(
        store, VirtualClock(start=T0, speed=0), await secret_key(store, None), hashes=cheap()
    )
    account = await cli.create_account("new@x.io", "New", "password-new")
    _, token = await cli.issue(account.id, KIND_NATIVE, 3600.0)
    await cli.announce()
    cli.close()
    reads = store.reads
    for i in range(1000):  # garbage tokens are refused from memory: no read each
        with pytest.raises(InvalidCredential):
            auth.authenticate(f"sg_{i:016x}.nope", KIND_NATIVE)
    assert store.reads == reads
    assert await auth.refresh()
    assert auth.authenticate(token, KIND_NATIVE).account_id == account.id
    assert not await auth.refresh()  # nothing changed since: nothing reloaded
    assert store.reads == reads + 1


async def test_refusals_of_a_busy_server_do_not_count_as_failures() -> None:
    store = MemoryStore()
    small = HashPool(
        max_waiting=1, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    auth = Auth(store, VirtualClock(start=T0, speed=0), "k" * 40, VirtualClock(start=T0), small)
    try:
        await auth.create_account("a@x.io", "A", "password-a")
        tries = [auth.login("a@x.io", "wrong", client="10.0.0.5") for _ in range(30)]
        results = await asyncio.gather(*tries, return_exceptions=True)
        busy = [r for r in results if isinstance(r, RateLimited)]
        assert len(busy) == 29 and "in progress" in str(busy[0])
        assert (await auth.login("a@x.io", "password-a", client="10.0.0.5")).email == "a@x.io"
    finally:
        auth.close()
