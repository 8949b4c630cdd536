"""Meter polling cannot be turned against the server's own network (SSRF)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from switchgear.links.netguard import NetGuard, StaticResolver
from switchgear.settings import Settings
from tests.conftest import World

METER = {"devid": "1728053249", "devpass": "012345", "model": "D103"}
READING = {"devid": "1728053249", "time": "0", "pout": "1",
           "data": {"V1": {"name": "Voltage 1", "unit": "V", "value": "230.00"}}}  # fmt: skip


@dataclass
class Net:
    """The fake network: DNS answers and every request the poller sent."""

    w: World
    dns: StaticResolver
    sent: list[httpx.Request] = field(default_factory=list)
    redirect_to: str | None = None

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.redirect_to:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(200, text=json.dumps(READING))

    async def add(self, url: str, token: str | None = None, **extra: Any) -> httpx.Response:
        body = {"url": url, **METER, **extra}
        return await self.w.client.post("/api/v1/meters", json=body, headers=self.w.auth(token))

    async def advance(self, seconds: float) -> None:
        """Move the clock on (0: just run what is due now) and let the polls finish."""
        r = await self.w.client.post(
            "/api/v1/sim/clock/advance", json={"seconds": seconds or 0.001}, headers=self.w.auth()
        )
        assert r.status_code == 200, r.text
        await self.w.rt.poller.settled()

    async def device(self, device_id: int) -> dict[str, Any]:
        r = await self.w.client.get(f"/api/v1/devices/{device_id}", headers=self.w.auth())
        return dict(r.json())


@pytest.fixture
async def net(world: World) -> AsyncIterator[Net]:
    dns = StaticResolver({"meter.lan": ["192.168.4.1"]})
    n = Net(world, dns)
    poller = world.rt.poller
    poller.guard = NetGuard(world.rt.settings.meter_networks, dns)
    poller.client = httpx.AsyncClient(transport=httpx.MockTransport(n.answer))
    yield n


def refused(r: httpx.Response) -> bool:
    return (
        r.status_code == 400
        and r.headers["content-type"] == "application/problem+json"
        and r.json()["field"] == "url"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",  # resolves to loopback (the fake DNS below)
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # loopback written as IPv6
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fe80::1]/",  # link-local
        "http://8.8.8.8/",  # public: not where meters live
        "http://sneaky.example/",  # a name that resolves to loopback
        "http://split.example/",  # one LAN address and one loopback address
        "http://nowhere.example/",  # does not resolve
    ],
)
async def test_registering_a_meter_at_a_refused_address_fails(net: Net, url: str) -> None:
    net.dns.table.update({"localhost": ["127.0.0.1"], "sneaky.example": ["127.0.0.1"],
                          "split.example": ["192.168.4.7", "127.0.0.1"]})  # fmt: skip
    r = await net.add(url)
    assert refused(r), r.text
    assert net.sent == []
    assert (await net.w.client.get("/api/v1/devices", headers=net.w.auth())).json()[-1][
        "family"
    ] != "meter"


async def test_metadata_stays_refused_even_when_every_network_is_allowed(net: Net) -> None:
    net.w.rt.poller.guard = NetGuard(["0.0.0.0/0", "::/0"], net.dns)
    assert refused(await net.add("http://169.254.169.254/"))
    assert refused(await net.add("http://[fd00:ec2::254]/"))
    r = await net.add("http://127.0.0.1:9/")  # the operator allowed everything else
    assert r.status_code == 201, r.text


def test_the_default_allow_list_is_the_private_lan() -> None:
    guard = NetGuard(Settings().meter_networks)
    import ipaddress

    for ok in ("192.168.4.1", "10.1.2.3", "172.16.0.9", "fd12::1"):
        assert guard.allows(ipaddress.ip_address(ok)), ok
    for bad in ("127.0.0.1", "169.254.169.254", "169.254.1.1", "::1", "fe80::1", "0.0.0.0",
                "8.8.8.8", "100.100.100.200"):  # fmt: skip
        assert not guard.allows(ipaddress.ip_address(bad)), bad


async def test_a_lan_meter_is_polled_at_the_checked_address(net: Net) -> None:
    r = await net.add("http://meter.lan:8080/")
    assert r.status_code == 201, r.text
    await net.advance(0)
    assert (await net.device(r.json()["id"]))["online"] is True
    sent = net.sent[-1]
    assert sent.url.host == "192.168.4.1" and sent.url.port == 8080
    assert sent.headers["host"] == "meter.lan:8080"


async def test_dns_rebinding_to_loopback_after_registration_is_not_polled(net: Net) -> None:
    r = await net.add("http://meter.lan/")
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    await net.advance(0)
    assert len(net.sent) == 1 and (await net.device(did))["online"] is True
    net.dns.table["meter.lan"] = ["127.0.0.1"]  # the name now points at the server itself
    await net.advance(6 * 5)
    assert len(net.sent) == 1  # no request left for loopback
    assert (await net.device(did))["online"] is False
    net.dns.table["meter.lan"] = ["192.168.4.1"]  # back on the LAN: polled again
    await net.advance(6)
    assert len(net.sent) == 2 and net.sent[-1].url.host == "192.168.4.1"


async def test_a_redirect_to_loopback_is_not_followed(net: Net) -> None:
    net.redirect_to = "http://127.0.0.1:8080/api/v1/devices"
    r = await net.add("http://meter.lan/")
    assert r.status_code == 201, r.text
    await net.advance(0)
    await net.advance(6)
    assert [req.url.host for req in net.sent] == ["192.168.4.1", "192.168.4.1"]
    assert (await net.device(r.json()["id"]))["online"] is False
    hist = await net.w.client.get(f"/api/v1/devices/{r.json()['id']}/history",
                                  headers=net.w.auth())  # fmt: skip
    assert [s for s in hist.json()["statuses"] if s["kind"] == "update"] == []


async def test_polled_meters_per_account_are_capped(net: Net) -> None:
    net.w.rt.settings.meter_max_per_account = 2
    for devid in ("1000000001", "1000000002"):
        assert (await net.add("http://meter.lan/", devid=devid)).status_code == 201
    r = await net.add("http://meter.lan/", devid="1000000003")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert "1000000003" not in {d.serial for d in net.w.rt.engine.all_devices()}
    other = await net.add("http://meter.lan/", token=net.w.token_b, devid="1000000004")
    assert other.status_code == 201, other.text  # another account has its own allowance
