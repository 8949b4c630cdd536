"""Credentials on every face: expired, revoked, tampered, unsigned and wrong-kind ones are
refused; passwords are argon2 hashes; no secret reaches the logs; repeated failed
sign-ins lock the account from that address."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from switchgear.auth import tokens
from switchgear.auth.scopes import (
    KIND_MULTISOCKET_ID_TOKEN,
    KIND_NATIVE,
    KIND_POWERCONTROLLER_TOKEN,
    KIND_PUSH3_GATEWAY_KEY,
    KIND_SMARTPLUG_ACCESS,
    KIND_SMARTPLUG_REFRESH,
    SCOPE_PLUG_READ,
    SCOPE_PLUG_WRITE,
)
from switchgear.demo import credentials
from switchgear.errors import AuthError
from tests.reliability.conftest import BASE, Estate
from tests.reliability.faces import PLANT

Use = Callable[[Estate, str], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Face:
    """How a face takes its credential, and the answer a refused one gets."""

    name: str
    use: Use
    kind: str
    jwt: bool
    refused: int = 401


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


FACES = (
    Face("native", lambda e, t: e.client.get("/api/v1/devices", headers=_h(t)), KIND_NATIVE,
         jwt=False),
    Face("smartplug", lambda e, t: e.client.get("/v1/controllers", headers=_h(t)),
         KIND_SMARTPLUG_ACCESS, jwt=False),
    Face("multisocket", lambda e, t: e.client.get(
        PLANT.format(e.section("multisocket")["plant_id"]),
        headers={"Ocp-Apim-Subscription-Key": e.section("multisocket")["subscription_key"],
                 "Authorization": t}), KIND_MULTISOCKET_ID_TOKEN, jwt=True),
    Face("powercontroller", lambda e, t: e.client.get("/v1/devices", headers=_h(t)),
         KIND_POWERCONTROLLER_TOKEN, jwt=True),
    Face("push3", lambda e, t: e.client.post(f"/sendCommand?key={t}", json={
        "command": "GetSchedules", "target": "meter",
        "target_id": e.section("push3")["meters"][0]}), KIND_PUSH3_GATEWAY_KEY, jwt=False),
)  # fmt: skip


async def _issue(e: Estate, face: Face, ttl: float | None = 3600.0) -> tuple[str, str]:
    """A fresh credential of the face's kind for account A: (id, token)."""
    if face.jwt:
        scopes = (SCOPE_PLUG_READ, SCOPE_PLUG_WRITE) if face.name == "multisocket" else ()
        cred, token = await e.rt.auth.issue_jwt(1, face.kind, ttl, scopes)
    else:
        attrs = {"gateway": e.section("push3")["gateway"]} if face.name == "push3" else None
        cred, token = await e.rt.auth.issue(1, face.kind, ttl, attrs=attrs)
    return cred.id, token


def _tamper(token: str, jwt: bool) -> str:
    if jwt:
        head, body, sig = token.split(".")
        return f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    cred_id, secret = tokens.parse(token)
    return tokens.compose(cred_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.name)
async def test_a_good_credential_works_and_every_spoiled_one_is_refused(
    estate: Estate, face: Face
) -> None:
    e = estate
    _, good = await _issue(e, face)
    assert (await face.use(e, good)).status_code == 200
    spoiled: dict[str, str] = {"tampered": _tamper(good, face.jwt)}
    revoked_id, spoiled["revoked"] = await _issue(e, face)
    await e.rt.auth.revoke(1, revoked_id)
    _, spoiled["expired"] = await _issue(e, face, ttl=60)
    if face.jwt:
        claims = pyjwt.decode(good, options={"verify_signature": False})
        spoiled["alg none"] = pyjwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
        spoiled["foreign key"] = pyjwt.encode(claims, "k" * 40, algorithm="HS256")
    for other in FACES:  # every other face's credential: the wrong kind
        if other.name != face.name:
            spoiled[f"{other.name} credential"] = (await _issue(e, other))[1]
    await e.rt.advance(61)
    for why, token in spoiled.items():
        r = await face.use(e, token)
        assert r.status_code == 401, (why, r.status_code, r.text)
    if face.name == "push3":  # the other account's gateway key reaches no meter of this one
        gateway = e.section("push3", other=True)["gateway"]
        _, theirs = await e.rt.auth.issue(2, face.kind, None, attrs={"gateway": gateway})
        r = await face.use(e, theirs)
        assert r.status_code == 404 and "unknown meter" in r.json()["error"]
    assert (await face.use(e, good)).status_code == 200


async def test_passwords_are_stored_as_argon2_hashes(estate: Estate) -> None:
    for key in ("account", "other_account"):
        found = await estate.rt.store.account_by_email(estate.creds[key]["email"])
        assert found is not None
        _, hashed = found
        assert hashed.startswith("$argon2id$")
        assert estate.creds[key]["password"] not in hashed


def _client_of(e: Estate, email: str) -> dict[str, Any]:
    """The smart-plug OAuth client of the account with this email."""
    return e.section("smartplug", other=email == e.creds["other_account"]["email"])


SIGNINS: dict[str, Callable[[Estate, str, str], Awaitable[httpx.Response]]] = {
    "native": lambda e, email, pw: e.client.post(
        "/api/v1/tokens", json={"email": email, "password": pw}),
    "smartplug": lambda e, email, pw: e.client.post("/v1/auth/login", json={
        "client_id": _client_of(e, email)["client_id"],
        "client_secret": _client_of(e, email)["client_secret"],
        "username": email, "password": pw}),
    "powercontroller": lambda e, email, pw: e.client.post(
        "/v1/signin", json={"user": {"email": email, "password": pw}}),
}  # fmt: skip


@pytest.mark.parametrize("face", sorted(SIGNINS))
async def test_repeated_failed_sign_ins_lock_the_account_from_that_address(
    estate: Estate, face: str
) -> None:
    e = estate
    email, password = e.creds["account"]["email"], e.creds["account"]["password"]
    signin = SIGNINS[face]
    assert (await signin(e, email, password)).status_code in (200, 201)
    for _ in range(5):
        assert (await signin(e, email, "wrong password!")).status_code in (400, 401)
    locked = await signin(e, email, password)  # even the right password, for now
    assert locked.status_code == 429
    assert "retry-after" in {k.lower() for k in locked.headers}
    other = e.creds["other_account"]
    assert (await signin(e, other["email"], other["password"])).status_code in (200, 201)
    await e.rt.advance(301)  # the virtual clock does not lift it: the window runs on wall time
    assert (await signin(e, email, password)).status_code == 429


async def test_no_secret_reaches_the_logs(estate: Estate, caplog: pytest.LogCaptureFixture) -> None:
    e = estate
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = []
    for key in ("account", "other_account"):
        c = e.creds[key]
        secrets += [c["password"], c["token"]]
        for f in FACES:
            if f.name != "native":
                await f.use(e, "Bearer junk")
        for face in SIGNINS:
            await SIGNINS[face](e, c["email"], c["password"])
            await SIGNINS[face](e, c["email"], c["password"] + "x")
    for other in (False, True):
        s = {d: e.section(d, other) for d in ("smartplug", "multisocket", "powercontroller",
                                              "push3", "meterhttp")}  # fmt: skip
        secrets += [s["smartplug"]["client_secret"], s["smartplug"]["access_token"],
                    s["smartplug"]["refresh_token"], s["multisocket"]["subscription_key"],
                    s["multisocket"]["id_token"], s["powercontroller"]["token"],
                    s["push3"]["key"]]  # fmt: skip
        secrets += [tokens.parse(t)[1] for t in (s["smartplug"]["access_token"], s["push3"]["key"])]
        secrets += [m["devpass"] for m in s["meterhttp"]["meters"]]
    for f in FACES:
        section = e.section(f.name) if f.name != "native" else {}
        token = {"native": e.creds["account"]["token"],
                 "smartplug": section.get("access_token"),
                 "multisocket": section.get("id_token"),
                 "powercontroller": section.get("token"),
                 "push3": section.get("key")}[f.name]  # fmt: skip
        await f.use(e, str(token))
    pin = "Zq7!k2Lw"
    p3 = e.section("push3")
    for params in ({"new_password": pin}, {"relay": "Relay_1", "status": "open",
                                           "meter_password": pin}):  # fmt: skip
        await e.client.post(f"/sendCommand?key={p3['key']}", json={
            "command": "SetMeterPassword" if "new_password" in params else "SetRelay",
            "target": "meter", "target_id": p3["meters"][0], "params": params})  # fmt: skip
        await e.rt.advance(1)
    secrets.append(pin)
    for m in e.section("meterhttp")["meters"]:
        await e.client.get(f"/?page=getdata&devid={m['devid']}&devpass={m['devpass']}&pout=1")
    logging.getLogger("httpx").info("HTTP Request: GET http://m/?page=getdata&devpass=%s", "P1N")
    secrets.append("P1N")  # a library's log line carrying a PIN is redacted too
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    leaked = [s for s in secrets if s and s in text]
    assert leaked == []
    await e.rt.journal.flush()
    stored = list(vars(e.rt.store)["_commands"].values())  # the memory store's command log
    pushed = [r for r in stored if r.name == "push3.command"]
    assert pushed and not [r for r in stored if pin in str(r.params)]


async def test_the_demo_smartplug_tokens_end_with_their_client(estate: Estate) -> None:
    """The credentials file's access and refresh tokens are the client's, as a login's are:
    revoking the client ends them; the next start gives a new client and tokens of it."""
    e = estate
    s = e.section("smartplug")
    plug = {"Authorization": f"Bearer {s['access_token']}"}
    native = {"Authorization": f"Bearer {e.creds['account']['token']}"}
    assert (await e.client.get("/v1/controllers", headers=plug)).status_code == 200
    r = await e.client.delete(f"/api/v1/credentials/{s['client_id']}", headers=native)
    assert r.status_code == 204
    assert (await e.client.get("/v1/controllers", headers=plug)).status_code == 401
    with pytest.raises(AuthError):
        e.rt.auth.authenticate(s["refresh_token"], KIND_SMARTPLUG_REFRESH)
    demo = await e.rt.store.meta("demo")
    assert isinstance(demo, dict)
    fresh = (await credentials(e.rt, demo, BASE))["smartplug"]
    assert fresh["client_id"] != s["client_id"]
    plug = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await e.client.get("/v1/controllers", headers=plug)).status_code == 200
    body = {k: fresh[k] for k in ("client_id", "client_secret", "refresh_token")}
    assert (await e.client.post("/v1/auth/renew", json=body)).status_code == 200
