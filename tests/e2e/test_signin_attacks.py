"""Sign-in and credential attacks against a real `switchgear demo` process over loopback HTTP."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from switchgear.cli.main import app
from tests.e2e.proc import Demo, start_demo

pytestmark = pytest.mark.e2e

BURST = 120
FLOOD = 100
PAIR_LIMIT = 5  # wrong passwords for one account from one address before 429


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("signin")
    # the test client plays a reverse proxy, so each test can come from its own address
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SWITCHGEAR_TRUSTED_PROXIES", '["127.0.0.1"]')
        mp.setenv("SWITCHGEAR_CREDENTIALS_REFRESH_S", "0.2")
        mp.setenv("SWITCHGEAR_MAX_CONNECTIONS_PER_CLIENT", "1000")  # one test client, 121 at once
        d = start_demo(tmp, tmp / "demo.db")
    try:
        yield d
    finally:
        d.stop()


def client(demo: Demo, address: str | None = None) -> httpx.AsyncClient:
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.AsyncClient(
        base_url=demo.base_url,
        headers=headers,
        timeout=300,
        limits=httpx.Limits(max_connections=BURST + 10),
    )


Attempt = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


def native(demo: Demo) -> Attempt:
    email = demo.credentials["account"]["email"]
    return lambda c, pw: c.post("/api/v1/tokens", json={"email": email, "password": pw})


def powercontroller(demo: Demo) -> Attempt:
    email = demo.credentials["account"]["email"]
    return lambda c, pw: c.post("/v1/signin", json={"user": {"email": email, "password": pw}})


def smartplug(demo: Demo) -> Attempt:
    creds = demo.credentials
    body = {k: creds["smartplug"][k] for k in ("client_id", "client_secret")}
    body["username"] = creds["account"]["email"]
    return lambda c, pw: c.post("/v1/auth/login", json={**body, "password": pw})


@pytest.mark.parametrize(
    ("face", "address"),
    [(native, None), (powercontroller, "203.0.113.2"), (smartplug, "203.0.113.3")],
)
async def test_a_concurrent_burst_of_guesses_meets_the_limit(
    demo: Demo, face: Callable[[Demo], Attempt], address: str | None
) -> None:
    attempt = face(demo)
    right = demo.credentials["account"]["password"]
    async with client(demo, address) as c:
        answers = await asyncio.gather(*(attempt(c, f"wrong-{i}") for i in range(BURST)))
        # sent after the burst: a right password inside it may reach the server among
        # the first five and rightly pass, so only this order has one right answer
        late = await attempt(c, right)
    verified = [r for r in answers if r.status_code in (400, 401)]
    refused = [r for r in answers if r.status_code == 429]
    assert len(verified) <= PAIR_LIMIT, [r.status_code for r in answers]
    assert len(verified) + len(refused) == BURST
    assert late.status_code == 429, late.text  # the pair is locked, even to the right password
    # another address signs in at once: the account itself is not locked
    async with client(demo, "198.51.100.9") as other:
        ok = await attempt(other, right)
    assert ok.status_code in (200, 201), ok.text


async def test_a_junk_sign_in_flood_leaves_other_tenants_fast(demo: Demo) -> None:
    creds = demo.credentials["other_account"]
    auth = {"Authorization": f"Bearer {creds['token']}"}
    async with client(demo) as reader:
        devices = (await reader.get("/api/v1/devices", headers=auth)).json()
        url = f"/api/v1/devices/{devices[0]['id']}"
        baseline = [await _timed(reader.get(url, headers=auth)) for _ in range(10)]

        async def flood() -> list[int]:
            async with client(demo, "203.0.113.66") as c:
                junk = [
                    c.post("/api/v1/tokens", json={
                        "email": f"{secrets.token_hex(6)}@junk.example",
                        "password": secrets.token_hex(8)})
                    for _ in range(FLOOD)
                ]  # fmt: skip
                return [r.status_code for r in await asyncio.gather(*junk)]

        # the flood runs on its own event loop, so its client work does not delay the reader
        flooding = asyncio.create_task(asyncio.to_thread(asyncio.run, flood()))
        during: list[float] = []
        while not flooding.done() and len(during) < 40:
            during.append(await _timed(reader.get(url, headers=auth)))
        statuses = await flooding
    assert sorted(set(statuses)) == [401, 429]
    assert statuses.count(401) <= 20  # the per-address limit across every e-mail
    bound = max(1.0, 10 * max(baseline))
    assert during and max(during) < bound, (during, baseline)


async def _timed(request: Awaitable[httpx.Response]) -> float:
    t0 = time.perf_counter()
    r = await request
    assert r.status_code == 200
    return time.perf_counter() - t0


def test_an_account_added_with_the_cli_works_on_the_running_server(demo: Demo) -> None:
    db = demo.credentials_path.parent / "demo.db"
    result = CliRunner().invoke(app, ["users", "add", "late@example.com", "--password",
                                      "a long password", "--database-url", f"sqlite:///{db}",
                                      "--token"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(tenant)" in result.stdout  # the demo's first account is the operator
    token = result.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 10
    while (r := httpx.get(f"{demo.base_url}/api/v1/account", headers=headers)).status_code != 200:
        assert r.status_code == 401 and time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert r.json()["email"] == "late@example.com" and r.json()["role"] == "tenant"
    signin = {"email": "late@example.com", "password": "a long password"}
    r = httpx.post(f"{demo.base_url}/api/v1/tokens", json=signin,
                   headers={"X-Forwarded-For": "198.51.100.44"})  # fmt: skip
    assert r.status_code == 201
    r = httpx.post(f"{demo.base_url}/api/v1/sim/clock/advance", json={"seconds": 60},
                   headers=headers)  # fmt: skip
    assert r.status_code == 403
