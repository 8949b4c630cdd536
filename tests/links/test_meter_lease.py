"""Exactly one of two servers on one PostgreSQL database polls a real meter.

The meter is a fake smart-MAIC HTTP server on loopback that counts its requests; the
servers run on manual clocks, moved by the test one poll interval at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import StatusKind
from switchgear.links.meterlease import LEASE_CHECK_S, LOCK_KEY
from switchgear.links.meterpoll import INTERVAL_S
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from tests.api.test_fleet_mqtt import LINK
from tests.api.test_mqtt_devices import SECRET, require_broker, until
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgres

DEVID, PIN = "1728053249", "012345"
INTERVAL = INTERVAL_S["standard"]


@dataclass
class FakeMeter:
    """A smart-MAIC meter's local API: answers getdata, counts the requests."""

    requests: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.split(b" ")[1].decode())
        volts = 230.0 + len(self.requests)  # each answer tells which request it was
        body = json.dumps({
            "devid": DEVID, "pout": 1,
            "data": {"V1": {"value": volts}, "A1": {"value": 1.0}, "W1": {"value": 230.0},
                     "Wh1": {"value": 1000.0}},
        }).encode()  # fmt: skip
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def meter() -> AsyncIterator[FakeMeter]:
    fake = FakeMeter()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


@contextlib.asynccontextmanager
async def worker(url: str, link: str = "memory", **more: Any) -> AsyncIterator[tuple[Any, Runtime]]:
    """A server on the database; with a broker `link`, told of the other workers' changes."""
    settings = Settings(database_url=url, speed=0, secret_key=SECRET, link=link,
                        meter_networks=["127.0.0.0/8"], **more)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.runtime


async def peered(one: Runtime, two: Runtime) -> None:
    """Wait until the two workers see each other on the broker (the first holds the lease)."""
    for rt in (one, two):
        await until(lambda rt=rt: len(rt.cluster.peers.present) == 1)  # type: ignore[misc,union-attr]
    assert one.poller.lease.held and not two.poller.lease.held


async def voltage(rt: Runtime, device_id: int) -> float:
    state = rt.engine.shadow(device_id)
    return state.meters[0].voltage_v if state.online and state.meters else 0.0


async def polls_stored(rt: Runtime, device_id: int) -> int:
    page = await rt.store.history([device_id], 0.0, 1e12)
    return sum(1 for s in page.records if s.kind is StatusKind.UPDATE and s.reason == "poll")


async def register(app: Any, rt: Runtime, meter: FakeMeter) -> int:
    """An account with the fake meter on it; the meter's id once the first poll is in."""
    account = await rt.auth.create_account("m@example.com", "M", "a long password")
    _, token = await rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
    body: dict[str, Any] = {"url": f"http://127.0.0.1:{meter.port}/", "devid": DEVID,
                            "devpass": PIN, "model": "D101"}  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://one") as client:
        r = await client.post("/api/v1/meters", json=body,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 201, r.text
    await until(lambda: len(meter.requests) == 1)  # the first poll, at once
    return int(r.json()["id"])


async def one_interval(meter: FakeMeter, *workers: Runtime) -> int:
    """Move every worker's clock one poll interval on; the meter's requests since."""
    before = len(meter.requests)
    for rt in workers:
        await rt.advance(INTERVAL)
    await until(lambda: len(meter.requests) > before)
    for rt in workers:
        await rt.poller.settled()
    return len(meter.requests) - before


async def fresh_database(request: pytest.FixtureRequest, *, broker: bool = False) -> str:
    """The tests' PostgreSQL database, emptied (`broker`: the workers peer over Mosquitto)."""
    if broker:
        require_broker()
    url: str = request.getfixturevalue("pg_database")
    await empty_schema(url)
    return url


async def test_one_worker_polls_and_the_other_takes_over_when_it_stops(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request)
    async with contextlib.AsyncExitStack() as stack:
        app, one = await stack.enter_async_context(worker(url))
        did = await register(app, one, meter)
        assert one.poller.lease.held

        two_cm = worker(url)
        _, two = await two_cm.__aenter__()
        try:
            assert not two.poller.lease.held
            # the follower shows the holder's answer, without asking the meter itself
            await until(lambda: two.engine.shadow(did).online)
            assert await voltage(two, did) == 231.0
            for n in range(2, 5):  # every interval: one request in all, both shadows follow
                await one.advance(INTERVAL)
                await two.advance(INTERVAL)
                await until(lambda n=n: len(meter.requests) >= n)  # type: ignore[misc]
                await two.poller.settled()
                await one.poller.settled()
                assert len(meter.requests) == n
                assert await voltage(one, did) == 230.0 + n
                # the follower reads at its own timer: at most one interval behind
                assert await voltage(two, did) in (230.0 + n, 229.0 + n)
            await one.journal.flush()
            await two.journal.flush()
            assert await polls_stored(two, did) == len(meter.requests)  # no duplicate history

            await stack.aclose()  # the holder stops: the database frees its lock
            await until(lambda: two.poller.lease.held, LEASE_CHECK_S * 3)
            before = len(meter.requests)
            await two.advance(INTERVAL)
            await until(lambda: len(meter.requests) == before + 1)
            await two.poller.settled()
            assert await voltage(two, did) == 230.0 + before + 1
        finally:
            await two_cm.__aexit__(None, None, None)


async def test_a_holder_that_loses_its_database_session_hands_over_without_double_polls(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request)
    async with worker(url) as (app, one):
        did = await register(app, one, meter)
        async with worker(url) as (_, two):
            assert await one_interval(meter, one, two) == 1
            # the holder's session ends under it (a network cut, an admin's kill)
            admin = await asyncpg.connect(url)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND objid = $1 AND granted AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())",
                    LOCK_KEY,
                )
            finally:
                await admin.close()
            assert killed == 1
            # at their next checks (every LEASE_CHECK_S): the old holder sees its session
            # gone and stops; the other takes the freed lock
            assert not await one.poller.lease.keep()
            assert await two.poller.lease.keep()
            assert not await one.poller.lease.keep()  # it tries again: taken
            for _ in range(2):
                assert await one_interval(meter, one, two) == 1
            assert two.engine.shadow(did).online and one.engine.shadow(did).online


async def test_a_meter_registered_on_the_worker_without_the_lease_is_polled_by_its_holder(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request, broker=True)
    async with worker(url, LINK) as (_, one), worker(url, LINK) as (app_two, two):
        await peered(one, two)
        did = await register(app_two, two, meter)  # the first poll: made by the holder
        await one.poller.settled()
        await until(lambda: one.engine.shadow(did).online and two.engine.shadow(did).online)
        assert await one_interval(meter, one, two) == 1


async def test_a_meter_registered_on_the_holder_is_polled_by_the_next_holder(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request, broker=True)
    async with contextlib.AsyncExitStack() as holder:
        app_one, one = await holder.enter_async_context(worker(url, LINK))
        async with worker(url, LINK) as (_, two):
            await peered(one, two)
            did = await register(app_one, one, meter)
            await until(lambda: two.engine.shadow(did).online)
            await holder.aclose()  # the holder stops: the database frees its lock
            assert await two.poller.lease.keep()
            assert await one_interval(meter, two) == 1
            assert await voltage(two, did) == 232.0


async def test_the_meters_per_account_cap_counts_those_registered_on_the_other_worker(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request, broker=True)
    cap = {"meter_max_per_account": 1}
    async with worker(url, LINK, **cap) as (app_one, one), worker(url, LINK, **cap) as (app, two):
        await peered(one, two)
        did = await register(app_one, one, meter)
        _, token = await two.auth.issue(one.poller.meter(did).device.account_id, KIND_NATIVE, 60)
        body = {"url": f"http://127.0.0.1:{meter.port}/", "devid": "1728053250", "devpass": PIN,
                "model": "D101"}  # fmt: skip
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://two") as client:  # fmt: skip
            r = await client.post("/api/v1/meters", json=body,
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 409, r.text  # the account's one meter, registered on one


async def test_the_lease_holder_leaves_no_transaction_open_between_checks(
    request: pytest.FixtureRequest,
) -> None:
    url = await fresh_database(request)
    async with worker(url) as (_, one):
        for _ in range(2):  # its checks while it holds the lease, every LEASE_CHECK_S
            assert await one.poller.lease.keep()
        admin = await asyncpg.connect(url)
        try:  # an open transaction blocks VACUUM; idle_in_transaction_session_timeout
            # would end the session, and the lease with it
            states = await admin.fetch(
                "SELECT a.state FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
                " WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted"
                " AND a.datname = current_database()",
                LOCK_KEY,
            )
        finally:
            await admin.close()
        assert [s["state"] for s in states] == ["idle"]


async def test_two_workers_registering_meters_at_once_keep_the_per_account_cap(
    request: pytest.FixtureRequest, meter: FakeMeter
) -> None:
    url = await fresh_database(request, broker=True)
    cap = {"meter_max_per_account": 1}
    async with worker(url, LINK, **cap) as (app_one, one), worker(url, LINK, **cap) as (app, two):
        await peered(one, two)
        account = await one.auth.create_account("m@example.com", "M", "a long password")
        await until(lambda: two.auth.account(account.id) is not None)

        async def post(app: Any, rt: Runtime, devid: str) -> int:
            _, token = await rt.auth.issue(account.id, KIND_NATIVE, 60.0)
            body = {"url": f"http://127.0.0.1:{meter.port}/", "devid": devid, "devpass": PIN,
                    "model": "D101"}  # fmt: skip
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://w") as client:  # fmt: skip
                r = await client.post("/api/v1/meters", json=body,
                                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            return r.status_code

        codes = await asyncio.gather(post(app_one, one, "1728053251"), post(app, two, "1728053252"))
        assert sorted(codes) == [201, 409]  # the account's one meter, on one worker or the other
        meters = [d for d in await one.store.devices() if d.account_id == account.id]
        assert len(meters) == 1
