"""Two API workers on one PostgreSQL database and the machine's Mosquitto behave as one.

Each worker is a whole server app (`create_app`), as each process of `serve --workers N`
is; the simulated devices run in a FleetNode on the same broker and database. A client
reaches either worker, as it would through any HTTP balancer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from switchgear.app import create_app
from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.model import Device
from switchgear.core.ports import Batch, Store
from switchgear.links.fleetnode import FleetNode
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.storage import SqlStore, open_store
from tests.api.test_fleet_mqtt import LINK
from tests.api.test_mqtt_devices import BROKER, require_broker, until
from tests.storage.conftest import empty_schema, pg_database  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

EMAIL, PASSWORD = "a@example.com", "correct horse A"


class Stream:
    """A streaming response read as it arrives (httpx's ASGI transport waits for the end)."""

    def __init__(self, app: Starlette, path: str, token: str | None = None) -> None:
        path, _, query = path.partition("?")
        headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
        self.scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("test", 80),
        }  # fmt: skip
        self.app = app
        self.status = 0
        self.text = ""
        self.ended = False
        self._started = asyncio.Event()
        self._asked = False
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self._task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        async with asyncio.timeout(5):
            await self._started.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        self._gone.set()
        assert self._task is not None
        async with asyncio.timeout(5):
            await asyncio.gather(self._task, return_exceptions=True)

    async def _receive(self) -> dict[str, Any]:
        if not self._asked:  # the (empty) request body, once
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self._started.set()
        elif message["type"] == "http.response.body":
            self._chunks.put_nowait(message.get("body", b""))
            if not message.get("more_body", False):
                self._chunks.put_nowait(None)

    async def until(self, check: Callable[[str], bool], seconds: float = 10.0) -> str:
        """Read until what arrived so far satisfies `check` (or the stream ends)."""
        async with asyncio.timeout(seconds):
            while not check(self.text) and not self.ended:
                chunk = await self._chunks.get()
                if chunk is None:
                    self.ended = True
                else:
                    self.text += chunk.decode()
        return self.text


@dataclass
class Worker:
    name: str
    app: Starlette
    rt: Runtime
    client: httpx.AsyncClient

    async def get(self, path: str, token: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers={"Authorization": f"Bearer {token}"}, **kw)

    async def post(self, path: str, token: str | None, body: Any) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.client.post(path, json=body, headers=headers)

    async def delete(self, path: str, token: str) -> httpx.Response:
        return await self.client.delete(path, headers={"Authorization": f"Bearer {token}"})


@asynccontextmanager
async def worker(
    name: str, url: str, secret: str, store: Store | None = None
) -> AsyncIterator[Worker]:
    """A whole server app on the database at `url` (`store`: a wrapper of it to use)."""
    settings = Settings(database_url=url, speed=1, secret_key=secret, link=LINK,
                        fleet="external", command_timeout_s=5)  # fmt: skip
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        assert rt.cluster is not None and rt.fleet_link is not None
        await until(lambda: rt.fleet_link is not None and rt.fleet_link.transport.connected)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Worker(name, app, rt, client)


@dataclass
class Deployment:
    a: Worker
    b: Worker
    account_id: int
    native: str  # a native token (issued on A)
    plug: Device
    secret: str = ""  # the workers' (for another worker on the same database)


@asynccontextmanager
async def deployment(url: str, a_store: Store | None = None) -> AsyncIterator[Deployment]:
    """Worker A (which creates the account; `a_store`: its store), worker B, and a fleet
    running a plug."""
    secret = f"workers-test-{secrets.token_hex(16)}"
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(worker("A", url, secret, a_store))
        b = await stack.enter_async_context(worker("B", url, secret))
        await until(lambda: len(a.rt.cluster.peers.present) == 1)  # type: ignore[union-attr]
        await until(lambda: len(b.rt.cluster.peers.present) == 1)  # type: ignore[union-attr]
        account = await a.rt.auth.create_account(EMAIL, "Account A", PASSWORD)
        _, native = await a.rt.auth.issue(account.id, KIND_NATIVE, 3600.0)
        serial = f"SPG{secrets.token_hex(5).upper()}"
        plug = await a.rt.add_device(Device(0, account.id, serial, "SHPLG-1", serial,
                                            a.rt.clock.now()))  # fmt: skip
        node = FleetNode(open_store(url), *BROKER, gateway_delay_s=0.2)
        await node.start()
        stack.push_async_callback(node.stop)
        d = Deployment(a, b, account.id, native, plug, secret)
        for w in (a, b):
            await until(lambda w=w: w.rt.engine.shadow(plug.id).online)  # type: ignore[misc]
        yield d


@pytest.fixture
async def url(pg_database: str) -> str:  # noqa: F811 (the fixture above)
    require_broker()
    await empty_schema(pg_database)
    return pg_database


def events(text: str) -> list[dict[str, Any]]:
    """The `data` of each SSE event in `text`."""
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines and lines.get("event") != "end":
            out.append(json.loads(lines["data"]))
    return out


async def switch(w: Worker, token: str, device_id: int, action: str) -> dict[str, Any]:
    r = await w.post(f"/api/v1/devices/{device_id}/channels/0/switch", token,
                     {"action": action})  # fmt: skip
    assert r.status_code == 200, r.text
    return dict(r.json())


async def history(w: Worker, token: str, device_id: int) -> list[dict[str, Any]]:
    r = await w.get(f"/api/v1/devices/{device_id}/history", token)
    assert r.status_code == 200, r.text
    return list(r.json()["statuses"])


async def test_sse_on_b_shows_a_switch_made_on_a_once_and_in_order(url: str) -> None:
    async with deployment(url) as d:
        path = f"/api/v1/events?device={d.plug.id}"
        async with Stream(d.b.app, path, d.native) as sse:
            assert sse.status == 200
            await sse.until(lambda t: ": connected" in t)
            for action in ("on", "off", "on"):
                assert (await switch(d.a, d.native, d.plug.id, action))["state"] == "done"
            text = await sse.until(lambda t: [e["reason"] for e in events(t)].count("api") >= 3)
        relays = [e for e in events(text) if e["kind"] == "relay"]
        assert [e["state"]["channels"][0]["on"] for e in relays] == [True, False, True]
        ids = [e["id"] for e in relays]
        assert len(set(ids)) == 3 and all(ids)  # each once, each naming its record
        # the same ids are the history's records (written by one of the two workers)
        await until(lambda: _recorded(d, ids))


async def _recorded(d: Deployment, ids: list[str]) -> bool:
    found = {h["id"] for h in await history(d.b, d.native, d.plug.id)}
    return set(ids) <= found


async def test_each_status_is_stored_once_though_both_workers_hear_it(url: str) -> None:
    async with deployment(url) as d:
        for i in range(6):  # switches alternate between the workers
            w = (d.a, d.b)[i % 2]
            await switch(w, d.native, d.plug.id, ("on", "off")[i % 2])
        # and a report the device makes by itself (a power cycle: power-on state)
        r = await d.b.post(f"/api/v1/sim/devices/{d.plug.id}/power-cycle", d.native, {})
        assert r.status_code in (200, 202, 204), r.text

        async def settled() -> bool:
            h = await history(d.a, d.native, d.plug.id)
            return sum(1 for x in h if x["kind"] == "relay" and x["reason"] == "api") >= 6

        await until(settled)
        await asyncio.sleep(0)  # (nothing is awaited from here on but the reads)
        await d.a.rt.journal.flush()
        await d.b.rt.journal.flush()
        records = await history(d.b, d.native, d.plug.id)
        ids = [x["id"] for x in records]
        assert len(ids) == len(set(ids)), records
        keys = [(x["ts"], x["kind"], x["reason"], json.dumps(x["data"])) for x in records]
        assert len(keys) == len(set(keys)), records  # no status twice under two ids
        api = [x for x in records if x["kind"] == "relay" and x["reason"] == "api"]
        assert [x["data"]["on"] for x in api] == [True, False] * 3


async def test_a_token_made_on_one_worker_works_on_the_other_and_dies_there_at_once(
    url: str,
) -> None:
    async with deployment(url) as d:
        for maker, user in ((d.a, d.b), (d.b, d.a)):
            r = await maker.post("/api/v1/tokens", d.native, {"desc": "t"})
            assert r.status_code == 201, r.text
            made = r.json()
            assert (await user.get("/api/v1/devices", made["token"])).status_code == 200
            r = await maker.delete(f"/api/v1/tokens/{made['id']}", d.native)
            assert r.status_code == 204
            refused = await user.get("/api/v1/devices", made["token"])
            assert refused.status_code == 401, refused.text


async def test_vendor_credentials_hold_on_both_workers(url: str) -> None:
    async with deployment(url) as d:
        login = {"client_id": "mclimate", "client_secret": "mclimate_core",
                 "username": EMAIL, "password": PASSWORD}  # fmt: skip
        r = await d.a.post("/v1/auth/login", None, login)
        assert r.status_code == 200, r.text
        access = r.json()["auth"]["access_token"]
        r = await d.b.post("/provider/fetch", access, {"serial_number": d.plug.serial})
        assert r.status_code == 200, r.text
        signin = {"user": {"email": EMAIL, "password": PASSWORD}}
        r = await d.b.post("/v1/signin", None, signin)
        assert r.status_code == 200, r.text
        pc = r.json()["token"]
        assert (await d.a.get("/v1/devices", pc)).status_code == 200
        r = await d.a.post("/api/v1/credentials", d.native, {"kind": "push3.key", "desc": "k"})
        assert r.status_code == 201, r.text
        key = r.json()
        push = await d.b.client.post(f"/sendCommand?key={key['key']}", json={})
        assert push.status_code == 400, push.text  # known key, bad body (not 401)
        r = await d.b.delete(f"/api/v1/credentials/{key['id']}", d.native)
        assert r.status_code == 204
        push = await d.a.client.post(f"/sendCommand?key={key['key']}", json={})
        assert push.status_code == 401, push.text


async def test_streams_on_b_end_when_their_credential_is_revoked_on_a(url: str) -> None:
    async with deployment(url) as d:
        r = await d.a.post("/api/v1/tokens", d.native, {"desc": "sse"})
        made = r.json()
        async with Stream(d.b.app, "/api/v1/events", made["token"]) as sse:
            await sse.until(lambda t: ": connected" in t)
            r = await d.a.delete(f"/api/v1/tokens/{made['id']}", d.native)
            assert r.status_code == 204
            text = await sse.until(lambda t: "event: end" in t, seconds=5)
        assert "credential revoked" in text


async def test_two_workers_serving_one_client_alternately(url: str) -> None:
    async with deployment(url) as d:
        a, b = d.a, d.b
        r = await a.post("/api/v1/tokens", None, {"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 201, r.text  # sign in on A
        token, token_id = r.json()["token"], r.json()["id"]
        r = await b.get("/api/v1/devices", token)  # list on B
        assert [x["id"] for x in r.json()] == [d.plug.id]
        async with Stream(b.app, "/api/v1/events", token) as sse:
            await sse.until(lambda t: ": connected" in t)
            assert (await switch(a, token, d.plug.id, "on"))["state"] == "done"  # on A
            r = await b.get(f"/api/v1/devices/{d.plug.id}", token)  # state on B
            assert r.json()["channels"][0]["on"] is True
            text = await sse.until(lambda t: any(e["reason"] == "api" for e in events(t)))
            assert [e["state"]["channels"][0]["on"] for e in events(text)
                    if e["reason"] == "api"] == [True]  # fmt: skip
            r = await a.post("/api/v1/tokens", token, {"desc": "child"})  # on A
            child = r.json()["token"]
            assert (await b.get("/api/v1/devices", child)).status_code == 200  # on B
            r = await b.delete(f"/api/v1/tokens/{token_id}", token)  # revoke on B
            assert r.status_code == 204
            assert (await a.get("/api/v1/devices", token)).status_code == 401  # refused on A
            assert (await a.get("/api/v1/devices", child)).status_code == 401  # and its child
            text = await sse.until(lambda t: "event: end" in t, seconds=5)
        assert "credential revoked" in text
        # a device registered on A afterwards is on B too, and reports there
        serial = f"SPG{secrets.token_hex(5).upper()}"
        plug2 = await a.rt.add_device(Device(0, d.account_id, serial, "SHPLG-1", serial,
                                             a.rt.clock.now()))  # fmt: skip
        assert b.rt.engine.known(plug2.id)
        await until(lambda: b.rt.engine.shadow(plug2.id).online)
        assert (await switch(b, d.native, plug2.id, "on"))["state"] == "done"


async def test_push3_answers_reach_a_channel_read_on_the_other_worker(url: str) -> None:
    async with deployment(url) as d:
        gateway = f"4016{secrets.token_hex(4).upper()}"
        address = f"{secrets.randbelow(10**12):012d}"
        for serial, model, attrs in ((gateway, "PUSH3", {}),
                                     (address, "OMNIMETER-V4", {"gateway": gateway})):  # fmt: skip
            await d.a.rt.add_device(Device(0, d.account_id, serial, model, serial,
                                           d.a.rt.clock.now(), attrs=attrs))  # fmt: skip
        r = await d.b.post("/api/v1/credentials", d.native, {"kind": "push3.key", "desc": "k"})
        key, key_id = r.json()["key"], r.json()["id"]
        gw = d.a.rt.engine.device_by_serial(d.account_id, gateway)
        for w in (d.a, d.b):
            await until(lambda w=w: w.rt.engine.shadow(gw.id).online)  # type: ignore[misc]
        command = {"command": "SetRelay", "target": "meter", "target_id": address,
                   "params": {"relay": "Relay_1", "status": "close", "duration": 0,
                              "meter_password": "00000000"}}  # fmt: skip
        r = await d.a.client.post(f"/sendCommand?key={key}", json=command)  # on A
        assert r.status_code == 200, r.text
        channel, msg_id = r.json()["response_channel_id"], r.json()["msg_id"]
        async with Stream(d.b.app, f"/sub/{channel}") as sub:  # read on B
            assert sub.status == 200
            text = await sub.until(lambda t: msg_id in t)
        answer = json.loads(next(line for line in text.splitlines() if msg_id in line))
        assert answer["success"] is True
        # later, a reader without `.b<N>` on B gets the recent answers first (replay)
        async with Stream(d.b.app, f"/sub/{channel}?key={key}") as again:
            replayed = await again.until(lambda t: msg_id in t, seconds=5)
            assert msg_id in replayed
            # its key revoked on A, the stream read with it on B ends
            r = await d.a.delete(f"/api/v1/credentials/{key_id}", d.native)
            assert r.status_code == 204
            await again.until(lambda t: False, seconds=5)
            assert again.ended


async def test_ffr_groups_made_on_either_worker_are_one_list_on_both(url: str) -> None:
    async with deployment(url) as d:
        heaters = [
            await d.a.rt.add_device(Device(0, d.account_id, f"PC-WORKERS000{i}-001",
                                           "power-controller-v10", "heater", d.a.rt.clock.now()))
            for i in (1, 2)
        ]  # fmt: skip
        for w in (d.a, d.b):
            for h in heaters:
                await until(lambda w=w, h=h: w.rt.engine.shadow(h.id).online)  # type: ignore[misc]
        body = {"name": "north", "programme": "ercot-ffr", "contracted_kw": 10.0}
        made = []
        for w, heater in zip((d.a, d.b), heaters, strict=True):
            ids = [heater.id, d.plug.id]  # (a plug has no FFR firmware: refused)
            r = await w.post("/api/v1/ffr/groups", d.native, {**body, "name": w.name,
                                                              "device_ids": ids})  # fmt: skip
            assert r.status_code == 201, r.text
            assert r.json()["refused"][0]["device_id"] == d.plug.id
            made.append(r.json()["id"])
        assert len(set(made)) == 2  # two workers never give one id twice
        for w in (d.a, d.b):
            r = await w.get("/api/v1/ffr/groups", d.native)
            assert sorted(g["name"] for g in r.json()) == ["A", "B"], (w.name, r.text)
        assert (await d.b.delete(f"/api/v1/ffr/groups/{made[0]}", d.native)).status_code == 200
        r = await d.a.get("/api/v1/ffr/groups", d.native)
        assert [g["name"] for g in r.json()] == ["B"]
        assert (await d.a.get(f"/api/v1/ffr/groups/{made[0]}", d.native)).status_code == 404


async def heaters_on_both(d: Deployment, n: int) -> list[Device]:
    """`n` power controllers in the fleet, on line as both workers see them."""
    made = [
        await d.a.rt.add_device(Device(0, d.account_id, f"PC-{secrets.token_hex(4).upper()}-001",
                                       "power-controller-v10", "heater", d.a.rt.clock.now()))
        for _ in range(n)
    ]  # fmt: skip
    for w in (d.a, d.b):
        for h in made:
            await until(lambda w=w, h=h: w.rt.engine.shadow(h.id).online)  # type: ignore[misc]
    return made


async def test_a_heater_requested_on_both_workers_at_once_joins_one_group(url: str) -> None:
    async with deployment(url) as d:
        shared, mine, yours = await heaters_on_both(d, 3)
        body = {"programme": "ercot-ffr", "contracted_kw": 10.0}
        rs = await asyncio.gather(
            d.a.post("/api/v1/ffr/groups", d.native,
                     {**body, "name": "A", "device_ids": [shared.id, mine.id]}),
            d.b.post("/api/v1/ffr/groups", d.native,
                     {**body, "name": "B", "device_ids": [shared.id, yours.id]}),
        )  # fmt: skip
        assert [r.status_code for r in rs] == [201, 201], [r.text for r in rs]
        made = [r.json() for r in rs]
        [won] = [g for g in made if shared.id in g["devices"]]
        [lost] = [g for g in made if g is not won]
        assert lost["refused"] == [
            {"device_id": shared.id, "reason": f"already in FFR group {won['id']}"}
        ]
        # it leaves its group on the other worker, and may then join another there
        leave = d.b if won["name"] == "A" else d.a
        r = await leave.delete(f"/api/v1/ffr/groups/{won['id']}/devices/{shared.id}", d.native)
        assert r.status_code == 200 and r.json()["restored"] is True, r.text
        again = d.a if leave is d.b else d.b
        r = await again.post("/api/v1/ffr/groups", d.native,
                             {**body, "name": "C", "device_ids": [shared.id]})  # fmt: skip
        assert r.status_code == 201 and r.json()["devices"] == [shared.id], r.text


async def group_names(w: Worker, token: str) -> list[str]:
    r = await w.get("/api/v1/ffr/groups", token)
    assert r.status_code == 200, r.text
    return sorted(g["name"] for g in r.json())


class GroupWritesHeld(SqlStore):
    """A worker's store (the real one) holding its writes of FFR groups until `go` is set:
    another worker's change is made and told meanwhile, as at the same time."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.holding = asyncio.Event()
        self.go = asyncio.Event()

    async def commit(self, batch: Batch) -> None:
        if any(k.startswith("ffr:group") for k in batch.meta) and not self.go.is_set():
            self.holding.set()
            await self.go.wait()
        await super().commit(batch)


async def test_groups_made_and_deleted_on_both_workers_at_once_are_all_kept(url: str) -> None:
    held = GroupWritesHeld(url)
    async with deployment(url, held) as d:
        h = await heaters_on_both(d, 3)
        body = {"programme": "ercot-ffr", "contracted_kw": 10.0}

        def make(w: Worker, name: str, heater: Device) -> Any:
            return w.post("/api/v1/ffr/groups", d.native,
                          {**body, "name": name, "device_ids": [heater.id]})  # fmt: skip

        on_a = asyncio.ensure_future(make(d.a, "A", h[0]))
        await asyncio.wait_for(held.holding.wait(), 10)  # A is writing its group...
        on_b = await make(d.b, "B", h[1])  # ...when B makes its own
        held.go.set()
        rs = [await on_a, on_b]
        assert [r.status_code for r in rs] == [201, 201], [r.text for r in rs]
        for w in (d.a, d.b):
            assert await group_names(w, d.native) == ["A", "B"], w.name
        gone = rs[0].json()["id"]
        rs = await asyncio.gather(
            d.b.delete(f"/api/v1/ffr/groups/{gone}", d.native), make(d.a, "C", h[2])
        )
        assert [r.status_code for r in rs] == [200, 201], [r.text for r in rs]
        for w in (d.a, d.b):
            assert await group_names(w, d.native) == ["B", "C"], w.name
        # the store has them as every worker shows them: a worker started now lists them too
        async with worker("C", url, d.secret) as c:
            assert await group_names(c, d.native) == ["B", "C"]
