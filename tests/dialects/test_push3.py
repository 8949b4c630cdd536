"""The EKM Push3 API as its clients use it: sendCommand, then read /sub or /ws (seed 003).

The response streams need a real HTTP server (chunked responses, websockets), so these
tests run the app under uvicorn on a loopback port, on a manual clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from switchgear.auth.scopes import KIND_NATIVE, KIND_PUSH3_GATEWAY_KEY, KIND_PUSH3_KEY
from switchgear.core.model import Device
from switchgear.core.ports import SimAction
from switchgear.dialects.push3.channels import hub
from switchgear.runtime import Runtime
from tests.api.test_mqtt_devices import until
from tests.deployments import SHAPES, deployed

ADDRESS = "000350000900"
GATEWAY = "4016A0B1C2D3"
SEED = {
    "command": "SetRelay",
    "target": "meter",
    "target_id": ADDRESS,
    "params": {"relay": "Relay_1", "status": "close", "duration": 1, "meter_password": "00000000"},
}


@dataclass
class Push3:
    rt: Runtime
    base: str
    client: httpx.AsyncClient
    key: str
    key_b: str
    meter: Device
    meter_b: Device
    shape: str = "embedded"

    async def send(self, body: dict[str, Any], key: str | None = None, **kw: Any) -> Any:
        return await self.client.post(f"/sendCommand?key={key or self.key}", json=body, **kw)

    async def advance(self, seconds: float) -> None:
        await self.rt.advance(seconds)

    async def gateway_turn(self, seconds: float) -> None:
        """Let the gateway fetch and run what waits for it: embedded, the manual clock moves
        `seconds`; on scale-out (real time) the reads that follow wait, bounded, for it."""
        if self.shape == "embedded":
            await self.advance(seconds)

    def relay(self, index: int) -> bool:
        return self.rt.engine.shadow(self.meter.id).channels[index].on


async def _device(rt: Runtime, account_id: int, serial: str, model: str, **attrs: str) -> Device:
    return await rt.add_device(
        Device(0, account_id, serial, model, serial, rt.clock.now(), attrs=attrs)
    )


@pytest.fixture(params=SHAPES)
async def push3(request: pytest.FixtureRequest) -> AsyncIterator[Push3]:
    async with deployed(request) as d:
        app, rt = d.app, d.rt
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        rt.settings.port = port  # the port links name: the one it listens on
        a = await rt.auth.create_account("a@example.com", "A", "correct horse A")
        b = await rt.auth.create_account("b@example.com", "B", "correct horse B")
        await _device(rt, a.id, GATEWAY, "PUSH3")
        meter = await _device(rt, a.id, ADDRESS, "OMNIMETER-V4", gateway=GATEWAY)
        await _device(rt, b.id, "4016FFFFFFFF", "PUSH3")
        meter_b = await _device(rt, b.id, "000350000901", "OMNIMETER-V4", gateway="4016FFFFFFFF")
        await d.settle()
        await rt.simulate(a.id, meter.id, SimAction("load", channel=0,
                          load={"type": "constant", "watts": 850.0}))  # fmt: skip
        _, key = await rt.auth.issue(a.id, KIND_PUSH3_KEY, None)
        _, key_b = await rt.auth.issue(b.id, KIND_PUSH3_KEY, None)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                yield Push3(rt, base, client, key, key_b, meter, meter_b, d.shape)
        finally:
            server.should_exit = True
            await task


async def read_stream(p: Push3, channel: str, count: int) -> list[Any]:
    """The first `count` messages of `GET /sub/<channel>`, read as a plain HTTP stream."""
    out: list[Any] = []
    async with p.client.stream("GET", f"/sub/{channel}") as r:
        assert r.status_code == 200
        async with asyncio.timeout(5):
            async for line in r.aiter_lines():
                if line.strip():
                    out.append(json.loads(line))
                if len(out) == count:
                    break
    return out


async def listened(p: Push3, channel: str) -> None:
    """Wait (bounded) until a reader listens on the channel: from then on what the gateway
    answers reaches it live, not from the replay of recent answers."""
    ch = hub(p.rt).get(channel)
    await until(lambda: bool(ch.listeners))


async def test_the_seed_example_exchange_over_the_http_stream(push3: Push3) -> None:
    p = push3
    r = await p.send(SEED)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"msg_id", "response_channel_id", "response_channel_host"}
    assert len(body["msg_id"]) == 32 and body["response_channel_id"].startswith("response_")
    assert body["response_channel_host"] == p.base.removeprefix("http://")
    reader = asyncio.create_task(read_stream(p, body["response_channel_id"], 1))
    await listened(p, body["response_channel_id"])
    sent_at = p.rt.clock.now()
    await p.gateway_turn(1.5)  # the gateway runs it within its delay
    [message] = await reader
    assert message == {"msg_id": body["msg_id"], "timestamp": pytest.approx(sent_at),
                       "success": True, "error": None, "data": None}  # fmt: skip
    await p.gateway_turn(1)
    relays: list[tuple[float, str, bool]] = []

    async def closed_and_opened() -> bool:
        page = await p.rt.engine.history(p.meter.account_id, [p.meter.id], 0, p.rt.clock.now() + 1)
        relays[:] = [
            (r.ts, r.reason, r.data["on"]) for r in page.records if r.kind.value == "relay"
        ]
        return len(relays) >= 2 and relays[-1][1] == "auto"

    await until(closed_and_opened)
    (t_on, why_on, on), (t_off, why_off, off) = relays[-2:]
    assert (why_on, on, why_off, off) == ("api", True, "auto", False)
    late = 0.0 if p.shape == "embedded" else 0.1  # real time: a timer fires a little late
    assert t_off - t_on == pytest.approx(1.0, abs=late or 1e-6)  # closed for one second
    assert sent_at < t_on <= sent_at + 1.5


async def test_the_same_answer_over_the_websocket(push3: Push3) -> None:
    p = push3
    body = (await p.send(SEED)).json()
    url = f"ws://{body['response_channel_host']}/ws/{body['response_channel_id']}"
    async with websockets.connect(url) as ws:
        await listened(p, body["response_channel_id"])
        await p.gateway_turn(1.5)
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
    assert message["msg_id"] == body["msg_id"] and message["success"] is True


async def test_twenty_commands_in_flight_all_answer_matched_by_msg_id(push3: Push3) -> None:
    p = push3
    bodies = [
        {**SEED, "params": {"relay": "Relay_2", "status": "close" if i % 2 else "open"},
         "client": "fleet-tool"}
        for i in range(20)
    ]  # fmt: skip
    answers = await asyncio.gather(*(p.send(b) for b in bodies))
    ids = [a.json()["msg_id"] for a in answers]
    channels = {a.json()["response_channel_id"] for a in answers}
    assert len(set(ids)) == 20 and len(channels) == 1  # one channel per client name
    [channel] = channels
    reader = asyncio.create_task(read_stream(p, channel, 20))
    await listened(p, channel)
    await p.gateway_turn(2)
    got = await reader
    assert sorted(m["msg_id"] for m in got) == sorted(ids)
    assert [m["msg_id"] for m in got] != ids  # the gateway's delays reorder them
    assert all(m["success"] for m in got)


async def test_b20_replays_earlier_responses(push3: Push3) -> None:
    p = push3
    sent = [(await p.send({**SEED, "client": "replay"})).json() for _ in range(3)]
    await p.gateway_turn(2)
    channel = sent[0]["response_channel_id"]
    replayed = await read_stream(p, f"{channel}.b20", 3)
    assert sorted(m["msg_id"] for m in replayed) == sorted(s["msg_id"] for s in sent)
    two = await read_stream(p, f"{channel}.b2", 2)
    assert [m["msg_id"] for m in two] == [m["msg_id"] for m in replayed[-2:]]


async def test_bad_parameters_are_400_with_an_error(push3: Push3) -> None:
    p = push3
    cases = [
        {**SEED, "command": "Explode"},
        {**SEED, "target": "toaster"},
        {**SEED, "target_id": "0003500009001"},
        {**SEED, "target_id": "00035000090!"},
        {**SEED, "params": ["relay"]},
        {k: v for k, v in SEED.items() if k != "command"},
        {**SEED, "response_channel_id": "made_up"},  # too short to be a capability
    ]
    answers = [await p.send(body) for body in cases]
    assert [r.status_code for r in answers] == [400] * len(cases)
    assert all(set(r.json()) == {"error"} and r.json()["error"] for r in answers)
    raw = await p.client.post(f"/sendCommand?key={p.key}", content=b"{not json",
                              headers={"Content-Type": "application/json"})  # fmt: skip
    assert raw.status_code == 400 and "JSON" in raw.json()["error"]
    # unknown meters and issued channels are 404: see the test of another account's below


async def test_a_short_address_is_zero_padded(push3: Push3) -> None:
    r = await push3.send({**SEED, "target_id": "350000900"})
    assert r.status_code == 200, r.text


async def test_meter_failures_arrive_as_success_false(push3: Push3) -> None:
    p = push3
    wrong = {**SEED, "params": {**SEED["params"], "meter_password": "12345678"}}
    body = (await p.send(wrong)).json()
    reader = asyncio.create_task(read_stream(p, body["response_channel_id"], 1))
    await listened(p, body["response_channel_id"])
    await p.gateway_turn(2)
    [message] = await reader
    assert message["success"] is False and message["error"] == "meter password rejected"
    assert p.relay(0) is False


async def test_keys_in_each_place_and_refused_otherwise(push3: Push3) -> None:
    p = push3
    c = p.client
    assert (await c.post("/sendCommand", json={**SEED, "key": p.key})).status_code == 200
    h = {"Authorization": f"Bearer {p.key}"}
    assert (await c.post("/sendCommand", json=SEED, headers=h)).status_code == 200
    _, native = await p.rt.auth.issue(p.meter.account_id, KIND_NATIVE, 60)
    for bad in (None, "nonsense", native, p.key + "x"):
        url = "/sendCommand" if bad is None else f"/sendCommand?key={bad}"
        r = await c.post(url, json=SEED)
        assert r.status_code == 401 and set(r.json()) == {"error"}
    assert (await p.send(SEED, key=p.key_b)).status_code == 404  # not its meter


async def test_a_gateway_key_reaches_only_its_gateways_meters(push3: Push3) -> None:
    p = push3
    _, gw_key = await p.rt.auth.issue(
        p.meter.account_id, KIND_PUSH3_GATEWAY_KEY, None, attrs={"gateway": "4016000000FF"}
    )
    assert (await p.send(SEED, key=gw_key)).status_code == 404  # the meter is not behind it
    _, right = await p.rt.auth.issue(
        p.meter.account_id, KIND_PUSH3_GATEWAY_KEY, None, attrs={"gateway": GATEWAY}
    )
    assert (await p.send(SEED, key=right)).status_code == 200
    r = await p.client.post(f"/sendCommand?key={right}&gateway=4016000000FF", json=SEED)
    assert r.status_code == 404


async def test_another_account_cannot_read_or_use_these_channels(push3: Push3) -> None:
    p = push3
    channel = (await p.send(SEED)).json()["response_channel_id"]
    theirs = await p.client.get(f"/sub/{channel}?key={p.key_b}")
    missing = await p.client.get(f"/sub/response_doesnotexist?key={p.key_b}")
    assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json())
    assert theirs.status_code == 404
    r = await p.send({**SEED, "target_id": p.meter_b.serial, "response_channel_id": channel},
                     key=p.key_b)  # fmt: skip
    assert r.status_code == 404
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(
            f"ws://{p.base.removeprefix('http://')}/ws/{channel}?key={p.key_b}"
        ):
            pass


async def _gateway_online(p: Push3, online: bool) -> None:
    gateway = next(d for d in p.rt.engine.devices(p.meter.account_id) if d.serial == GATEWAY)
    await p.rt.simulate(p.meter.account_id, gateway.id, SimAction("online", online=online))


@pytest.mark.embedded_only("advances the manual clock")
async def test_commands_wait_for_an_offline_gateway_and_run_when_it_returns(push3: Push3) -> None:
    p = push3
    await _gateway_online(p, False)
    hold = {**SEED, "params": {**SEED["params"], "duration": 0}}
    body = (await p.send(hold)).json()
    channel = body["response_channel_id"]
    reader = asyncio.create_task(read_stream(p, channel, 1))
    await p.advance(600)  # ten minutes away: nothing runs, nothing fails
    assert not reader.done() and p.relay(0) is False
    await _gateway_online(p, True)
    await p.advance(3)  # it polls its stream on return, then runs the command
    [message] = await reader
    assert (message["msg_id"], message["success"]) == (body["msg_id"], True)
    assert p.relay(0) is True


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_command_waits_an_hour_for_its_gateway_then_fails(push3: Push3) -> None:
    p = push3
    await _gateway_online(p, False)
    body = (await p.send(SEED)).json()
    await p.advance(3602)
    [message] = await read_stream(p, f"{body['response_channel_id']}.b1", 1)
    assert message["msg_id"] == body["msg_id"] and message["success"] is False
    assert message["error"] == (
        f"gateway {GATEWAY} is off the network: it did not come back within 3600 s; command dropped"
    )
    await _gateway_online(p, True)
    await p.advance(3)
    assert p.relay(0) is False  # a dropped command never runs


async def test_links_come_from_the_configured_base_url_not_the_host_header(
    push3: Push3,
) -> None:
    p = push3
    r = await p.send(SEED, headers={"Host": "evil.example"})
    assert r.status_code == 200
    host = r.json()["response_channel_host"]
    assert host == p.base.removeprefix("http://")
    assert p.key not in r.text
    p.rt.settings.public_url = "https://push.example.org/switchgear/"
    r = await p.send(SEED, headers={"Host": "evil.example"})
    assert r.json()["response_channel_host"] == "push.example.org/switchgear"


async def test_an_unknown_websocket_channel_is_the_404_of_sub(push3: Push3) -> None:
    p = push3
    sub = await p.client.get("/sub/response_doesnotexist")
    assert (sub.status_code, sub.json()) == (404, {"error": "channel not found"})
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            f"ws://{p.base.removeprefix('http://')}/ws/response_doesnotexist"
        ):
            pass
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body or b"") == {"error": "channel not found"}


async def test_a_wrong_key_on_the_websocket_is_the_404_whatever_the_channel_id(
    push3: Push3,
) -> None:
    """The key is checked before the id's form (see test_push3_auth_first for `/sub`)."""
    p = push3
    for channel in ("response_doesnotexist", "bad!id"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(
                f"ws://{p.base.removeprefix('http://')}/ws/{channel}?key={p.key}x"
            ):
                pass
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body or b"") == {"error": "channel not found"}


FEB_30 = {"year": "2024", "month": "02", "day": "30"}


@pytest.mark.embedded_only("reads the in-process gateway's queue")
async def test_invalid_command_parameters_are_400_before_anything_is_sent(push3: Push3) -> None:
    p = push3
    relay = SEED["params"]
    cases = [
        ("SetRelay", {**relay, "relay": "Relay_3"}, "relay"),
        ("SetRelay", {**relay, "status": "ajar"}, "status"),
        ("SetRelay", {**relay, "duration": 10000}, "duration"),
        ("SetRelay", {**relay, "duration": 1.5}, "duration"),
        ("SetRelay", {**relay, "meter_password": "short"}, "meter_password"),
        ("SetRelay", {**relay, "meter_password": "0000000\x00"}, "meter_password"),
        ("SetCTRatio", {"ct_ratio": "250"}, "ct_ratio"),
        ("SetMaxDemandPeriod", {"max_demand_period": 4}, "max_demand_period"),
        ("SetTime", {**FEB_30, "hour": "00", "minutes": "00", "seconds": "00"}, "date"),
        ("SetLCD", {"display_fields": ["kWh_Tot", "Nonsense"]}, "display field"),
        ("SetSchedule", {"schedule": 7, "periods": []}, "schedule"),
    ]
    for command, params, word in cases:
        r = await p.send({**SEED, "command": command, "params": params})
        assert r.status_code == 400, (command, params, r.text)
        assert set(r.json()) == {"error"} and word in r.json()["error"], r.json()
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        body = json.dumps(SEED).replace('"duration": 1', '"duration": ' + raw.decode())
        r = await p.client.post(f"/sendCommand?key={p.key}", content=body.encode(),
                                headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and set(r.json()) == {"error"}, (raw, r.text)
    to_gateway = await p.send({**SEED, "target": "gateway", "target_id": GATEWAY})
    assert to_gateway.status_code == 400 and "gateway takes no command" in to_gateway.text
    # nothing reached the gateway: its queue is empty and no answer ever comes
    gateway = next(d for d in p.rt.engine.devices(p.meter.account_id) if d.serial == GATEWAY)
    assert p.rt.link.fleet.get(gateway.id).queue == {}  # type: ignore[attr-defined, union-attr]
    ok = await p.send({**SEED, "params": {**relay, "relay": "relay_2", "duration": "9999"}})
    assert ok.status_code == 200, ok.text


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_plain_sub_after_the_answer_still_gets_it_for_a_minute(push3: Push3) -> None:
    p = push3
    body = (await p.send(SEED)).json()
    await p.advance(2)  # answered before anyone reads
    [message] = await read_stream(p, body["response_channel_id"], 1)
    assert message["msg_id"] == body["msg_id"] and message["success"] is True
    await p.advance(61)  # past the minute: a new plain reader starts with new answers only
    later = (await p.send({**SEED, "params": {**SEED["params"], "status": "open"}})).json()
    reader = asyncio.create_task(read_stream(p, body["response_channel_id"], 1))
    await listened(p, body["response_channel_id"])
    await p.advance(2)
    assert [m["msg_id"] for m in await reader] == [later["msg_id"]]
    # .b0 asks for no replay at all, .b2 for the last two whatever their age
    two = await read_stream(p, f"{body['response_channel_id']}.b2", 2)
    assert [m["msg_id"] for m in two] == [body["msg_id"], later["msg_id"]]


@pytest.mark.embedded_only(
    "needs the gateway to stay silent, which the stopped manual clock ensures"
)
async def test_an_idle_stream_gets_keep_alives(push3: Push3) -> None:
    p = push3
    p.rt.settings.push3_keepalive_s = 0.1
    channel = (await p.send(SEED)).json()["response_channel_id"]
    got = b""
    async with p.client.stream("GET", f"/sub/{channel}.b0") as r:
        async with asyncio.timeout(5):
            async for chunk in r.aiter_raw():
                got += chunk
                if got.count(b"\r\n") >= 2:
                    break
    assert got == b"\r\n\r\n"  # blank lines: no answer has arrived, the stream is alive


async def test_a_client_may_name_its_own_response_channel(push3: Push3) -> None:
    p = push3
    mine = "my-app-channel-0001"
    body = (await p.send({**SEED, "response_channel_id": mine})).json()
    assert body["response_channel_id"] == mine
    reader = asyncio.create_task(read_stream(p, mine, 1))
    await listened(p, mine)
    await p.gateway_turn(2)
    [message] = await reader
    assert message["msg_id"] == body["msg_id"] and message["success"] is True
    again = await p.send({**SEED, "response_channel_id": mine})
    assert again.status_code == 200 and again.json()["response_channel_id"] == mine
    # another account cannot take it, nor read it with its key
    theirs = {**SEED, "target_id": p.meter_b.serial, "response_channel_id": mine}
    taken = await p.send(theirs, key=p.key_b)
    assert taken.status_code == 400 and "taken" in taken.json()["error"]
    assert (await p.client.get(f"/sub/{mine}?key={p.key_b}")).status_code == 404
    bad_names = ("short", "has spaces in it here", "x" * 129, "dotted.b20.channel.id")
    for bad in bad_names:
        r = await p.send({**SEED, "response_channel_id": bad})
        assert r.status_code == 400 and "response_channel_id" in r.json()["error"], bad
    r = await p.send({**SEED, "response_channel_id": "response_is_reserved_for_issued_ids"})
    assert (r.status_code, r.json()) == (404, {"error": "unknown response_channel_id"})


async def test_another_accounts_meter_and_channel_are_404_like_missing_ones(push3: Push3) -> None:
    """CONTRACTS §3: what belongs to another account answers as what does not exist, 404."""
    p = push3
    theirs = await p.send({**SEED, "target_id": p.meter_b.serial})
    missing = await p.send({**SEED, "target_id": "000350000999"})
    assert (theirs.status_code, theirs.json()) == (404, {"error": "unknown meter 000350000901"})
    assert (missing.status_code, missing.json()) == (404, {"error": "unknown meter 000350000999"})
    r = await p.send({**SEED, "target": "gateway", "target_id": "4016FFFFFFFF"})
    assert (r.status_code, r.json()) == (404, {"error": "unknown gateway 4016FFFFFFFF"})
    channel = (await p.send(SEED)).json()["response_channel_id"]
    body = {**SEED, "target_id": p.meter_b.serial}
    theirs = await p.send({**body, "response_channel_id": channel}, key=p.key_b)
    missing = await p.send({**body, "response_channel_id": "response_doesnotexist"}, key=p.key_b)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"error": "unknown response_channel_id"}


@pytest.mark.embedded_only("advances the manual clock")
async def test_a_response_channel_id_never_reaches_the_logs(
    push3: Push3, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading a channel needs only its id: the access line of `/sub/<id>` names the route,
    never the id (anyone who reads the log would read the account's answers)."""
    p = push3
    caplog.set_level(logging.DEBUG)
    channel = (await p.send(SEED)).json()["response_channel_id"]
    await p.advance(2)
    [message] = await read_stream(p, f"{channel}.b1", 1)
    assert message["success"] is True

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "switchgear.access"]

    await until(lambda: any("/sub/" in line for line in logged()))  # once the stream closed
    assert any(line.startswith("GET /sub/[redacted].b1 200 ") for line in logged()), logged()
    assert not [r.getMessage() for r in caplog.records if channel in r.getMessage()]
