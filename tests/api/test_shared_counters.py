"""Limits that hold across workers: two servers on one PostgreSQL database share them."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.auth.throttle import PAIR_FAILURES
from switchgear.core.model import Device
from switchgear.dialects.meterhttp.pins import PER_ADDRESS
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgres

EMAIL, PASSWORD = "owner@example.com", "a long password"
DEVID, PIN = "1728053249", "012345"
STRANGER = "203.0.113.9"
PLANT = "2f1b5a7e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"


@dataclass
class Worker:
    app: Starlette
    rt: Runtime
    client: httpx.AsyncClient  # requests from STRANGER


@dataclass
class Pair:
    one: Worker
    two: Worker
    token: str  # a native token of the account

    def workers(self, n: int) -> list[Worker]:
        """n requests' workers, alternately: a client behind a balancer."""
        return [self.one if i % 2 == 0 else self.two for i in range(n)]


@pytest.fixture
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    pg: str = request.getfixturevalue("pg_database")
    await empty_schema(pg)
    settings = dict(
        database_url=pg, speed=0, secret_key="test-secret-key-of-at-least-32-bytes",
        multisocket_daily_quota=4, registrations_per_hour=3,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:

        async def worker() -> Worker:
            app = create_app(Settings(**settings))  # type: ignore[arg-type]
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=(STRANGER, 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://test")
            await stack.enter_async_context(client)
            return Worker(app, app.state.runtime, client)

        one = await worker()
        account = await one.rt.auth.create_account(EMAIL, "Owner", PASSWORD)
        _, token = await one.rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        now = one.rt.clock.now()
        meter = Device(0, account.id, DEVID, "D101", "meter", now, attrs={"devpass": PIN})
        strip = Device(0, account.id, "LGM-S1", "LG-MULTI-4", "strip", now,
                       attrs={"plant_id": PLANT})  # fmt: skip
        for device in (meter, strip):
            await one.rt.add_device(device)
        two = await worker()  # started after: it loads the account and devices from the store
        yield Pair(one, two, token)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(w: Worker, password: str) -> httpx.Response:
    body = {"user": {"email": EMAIL, "password": password}}
    return await w.client.post("/v1/signin", json=body)


async def test_wrong_passwords_split_across_workers_are_counted_together(pair: Pair) -> None:
    for w in pair.workers(PAIR_FAILURES):  # 3 on one worker, 2 on the other
        assert (await sign_in(w, "not the password")).status_code == 401
    for w in (pair.one, pair.two):  # the 6th is refused on either, the right password too
        r = await sign_in(w, PASSWORD)
        assert r.status_code == 429 and "Retry-After" in r.headers


async def test_the_multisocket_quota_spent_half_on_each_worker_is_exhausted(pair: Pair) -> None:
    r = await pair.one.client.post(
        "/api/v1/credentials", json={"kind": "multisocket.key"}, headers=auth(pair.token)
    )
    key = r.json()["subscription_key"]
    r = await pair.one.client.post(
        "/api/v1/credentials", json={"kind": "multisocket.id_token"}, headers=auth(pair.token)
    )
    id_token = r.json()["id_token"]
    await pair.two.rt.auth.load()  # (the credential bus is another change's)
    headers = {"Ocp-Apim-Subscription-Key": key, "Authorization": id_token}
    url = f"/multioutlet/plug/energy/addressLocation/plants/{PLANT}/parameter/id/value/LGM-S1-1"
    for w in pair.workers(4):
        r = await w.client.get(url, headers=headers)
        assert r.status_code == 200, r.text
    for w in (pair.one, pair.two):
        r = await w.client.get(url, headers=headers)
        assert r.status_code == 403
        assert r.json()["message"].startswith("Out of call volume quota.")


async def test_the_registration_allowance_holds_across_workers(pair: Pair) -> None:
    # probing devids alternately on each worker: refused attempts count as added ones do
    body = {"url": "http://192.168.1.50/", "devpass": PIN, "model": "D103"}
    for n, w in enumerate(pair.workers(3)):
        probe = {**body, "devid": f"probe{n}"}
        r = await w.client.post("/api/v1/meters", json=probe, headers=auth(pair.token))
        assert r.status_code == 400, r.text
    for w in (pair.one, pair.two):
        probe = {**body, "devid": "probe9"}
        r = await w.client.post("/api/v1/meters", json=probe, headers=auth(pair.token))
        assert r.status_code == 429


async def test_wrong_meter_pins_split_across_workers_are_counted_together(pair: Pair) -> None:
    for n, w in enumerate(pair.workers(PER_ADDRESS)):
        params = {"page": "getdata", "devid": DEVID, "devpass": f"{n:06d}"}
        assert (await w.client.get("/", params=params)).status_code == 403
    for w in (pair.one, pair.two):  # out of guesses on either, the right PIN included
        params = {"page": "getdata", "devid": DEVID, "devpass": PIN}
        assert (await w.client.get("/", params=params)).status_code == 429


async def test_a_concurrent_burst_over_both_workers_meets_the_limit_one_by_one(
    pair: Pair,
) -> None:
    tries = [sign_in(w, "not the password") for w in pair.workers(3 * PAIR_FAILURES)]
    answers = sorted(r.status_code for r in await asyncio.gather(*tries))
    # each reservation is one atomic statement: exactly the limit's worth is checked
    assert answers == [401] * PAIR_FAILURES + [429] * (2 * PAIR_FAILURES)


async def test_a_concurrent_burst_of_wrong_pins_meets_the_limit_one_by_one(pair: Pair) -> None:
    def guess(n: int, w: Worker) -> Awaitable[httpx.Response]:
        return w.client.get("/", params={"page": "getdata", "devid": DEVID, "devpass": f"{n:06d}"})

    tries = [guess(n, w) for n, w in enumerate(pair.workers(3 * PER_ADDRESS))]
    answers = sorted(r.status_code for r in await asyncio.gather(*tries))
    # each guess is counted before it is checked: exactly the limit's worth is compared
    assert answers == [403] * PER_ADDRESS + [429] * (2 * PER_ADDRESS)


async def test_an_overlong_devid_or_email_gets_the_faces_refusal_not_an_error(pair: Pair) -> None:
    long = secrets.token_urlsafe(6000)  # random: no index entry of the database holds it
    r = await pair.one.client.get("/", params={"page": "getdata", "devid": long, "devpass": PIN})
    assert r.status_code == 403 and r.json() == {"error": "access denied"}
    r = await sign_in(pair.two, long)
    assert r.status_code == 401, r.text
    body = {"user": {"email": f"{long}@example.com", "password": PASSWORD}}
    r = await pair.one.client.post("/v1/signin", json=body)
    assert r.status_code == 401, r.text
