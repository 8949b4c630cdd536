"""Hostile JSON on every face: bodies that break parsers, not fields.

Hypothesis takes each body-taking endpoint's valid request and puts, at one of its
fields (or around the whole body), something that breaks a parser or what comes after
it: `NaN`/`Infinity` literals, numbers that overflow a double, integers of hundreds of
digits, nesting 60-3,000 deep, lone surrogate escapes, invalid UTF-8, a byte-order mark,
NUL bytes, duplicate keys, long strings. What is not JSON by the parse-level rule
(`switchgear/jsontext.py`) must get a 4xx; nothing may get a 5xx; every refusal is in
the face's error shape and leaves the estate as it was; afterwards the endpoint still
answers its valid request.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import ON_EVERY_STORE, Estate, push3_answers
from tests.reliability.faces import ENDPOINTS, SHAPES, Endpoint, native, p3, plug_id

pytestmark = ON_EVERY_STORE

EXAMPLES = 30  # per endpoint; docs/reliability.md records the totals
RAN: Counter[str] = Counter()
SENTINEL = "\x00hostile\x00"


def oauth_error(r: httpx.Response) -> bool:
    """The smart-plug login's own refusal: `{"auth": {"error", "error_description"}}`."""
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("auth"), dict) and (
        {"error", "error_description"} <= set(body["auth"]))  # fmt: skip


def _login_body(e: Estate) -> dict[str, Any]:
    client = e.section("smartplug")
    account = e.creds["account"]
    return {"client_id": client["client_id"], "client_secret": client["client_secret"],
            "username": account["email"], "password": account["password"]}  # fmt: skip


EXTRA = (
    Endpoint("smartplug", "login", "POST", lambda e: "/v1/auth/login", lambda e: {},
             _login_body, {"username": st.nothing(), "client_id": st.nothing()}),
    Endpoint("native", "load", "PUT", lambda e: f"/api/v1/sim/devices/{plug_id(e)}/load", native,
             lambda e: {"channel": 0, "model": {"type": "cycling", "watts": 100, "on_s": 60,
                                                "off_s": 60, "anchor": 0}},
             {"model.watts": st.nothing(), "model.anchor": st.nothing(),
              "model.on_s": st.nothing(), "channel": st.nothing()}),
)  # fmt: skip
# fields the fuzzer's table leaves out but a parser's output reaches
MORE_FIELDS = {"sendCommand": ("params.duration", "params.relay")}

NOT_JSON = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "-0e9999"]),
    st.integers(309, 1200).map(lambda n: "9" * n),
    st.integers(65, 3000).flatmap(lambda d: st.sampled_from(
        ["[" * d + "]" * d, '{"a":' * d + "1" + "}" * d, "[" * d + "NaN" + "]" * d])),
    st.sampled_from(['"\\ud800"', '"x\\udfff"', '{"\\udc00": 1}', '["\\ud83d"]']),
)  # fmt: skip
STRANGE_BUT_JSON = st.one_of(
    st.sampled_from(["-0", "1e-400", "1.7976931348623157e308", "18446744073709551616", "[]",
                     "{}", '"\\ud83d\\ude00"', '"\\u0000"', "null"]),
    st.integers(20, 300).map(lambda n: "9" * n),
    st.integers(2, 60).map(lambda d: "[" * d + "]" * d),
    st.integers(1000, 30_000).map(lambda n: json.dumps("é" * n)),
)  # fmt: skip
# whole-body damage: (prefix, suffix) around the valid body, or bytes spliced in
WRAPPERS = st.sampled_from([
    (b"", b"\x00"), (b"\x00", b""), (b"", b" x"), (b"[" * 2000, b""),
    (b"", b"]" * 2000), (b"\xff\xfe", b""), (b"", b"\xc3\x28"),
])  # fmt: skip


def fields_of(ep: Endpoint) -> list[str]:
    return sorted(ep.fields) + list(MORE_FIELDS.get(ep.name, ()))


def cases(ep: Endpoint) -> st.SearchStrategy[tuple[str, Any]]:
    field = st.sampled_from(fields_of(ep))
    return st.one_of(
        st.tuples(st.just("not json"), st.tuples(field, NOT_JSON)),
        st.tuples(st.just("strange"), st.tuples(field, STRANGE_BUT_JSON)),
        st.tuples(st.just("duplicate"), st.tuples(field, NOT_JSON)),
        st.tuples(st.just("wrapped"), WRAPPERS),
        st.tuples(st.just("strange"), st.just((b"\xef\xbb\xbf", b""))),  # RFC 8259 §8.1: may ignore
    )


def _splice(body: dict[str, Any], dotted: str, text: str, duplicate: bool = False) -> bytes:
    out = copy.deepcopy(body)
    node = out
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if duplicate:  # the key twice: its valid value, then the hostile one
        node[leaf + SENTINEL] = SENTINEL
        raw = json.dumps(out).replace(json.dumps(leaf + SENTINEL), json.dumps(leaf))
    else:
        node[leaf] = SENTINEL
        raw = json.dumps(out)
    return raw.replace(json.dumps(SENTINEL), text).encode()


def generate(ep: Endpoint) -> list[tuple[str, Any]]:
    drawn: list[tuple[str, Any]] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=cases(ep))
    def draw(case: tuple[str, Any]) -> None:
        drawn.append(case)

    draw()
    return drawn


async def send(e: Estate, ep: Endpoint, content: bytes) -> httpx.Response:
    headers = {**ep.headers(e), "Content-Type": "application/json"}
    return await e.client.request(ep.method, ep.url(e), content=content, headers=headers)


BODIES = [ep for ep in ENDPOINTS + EXTRA if ep.body is not None]
FACES = sorted({ep.face for ep in BODIES})


@pytest.mark.parametrize("face", FACES)
async def test_hostile_json_gets_the_faces_4xx_never_a_5xx_and_changes_nothing(
    estate: Estate, face: str
) -> None:
    for ep in (ep for ep in BODIES if ep.face == face):
        assert ep.body is not None
        shape = oauth_error if ep.name == "login" else SHAPES[face]
        for damage, what in generate(ep):
            body = ep.body(estate)
            if isinstance(what[0], bytes):
                content = what[0] + json.dumps(body).encode() + what[1]
            else:
                content = _splice(body, what[0], what[1], duplicate=damage == "duplicate")
            before = estate.fingerprint()
            r = await send(estate, ep, content)
            RAN[face] += 1
            case = (ep.name, damage, content[:120], r.status_code, r.text[:200])
            assert r.status_code < 500, case
            if damage != "strange":  # not JSON by the parse-level rule
                assert 400 <= r.status_code < 500, case
            if r.status_code >= 400:
                assert shape(r), case
                assert estate.fingerprint() == before, case
        # the face still works: its valid request is answered (or refused in its shape
        # as a duplicate, when a strange but valid case made the thing already; a taken
        # serial is answered like a malformed one, so ask the registry)
        body = ep.body(estate)
        r = await send(estate, ep, json.dumps(body).encode())
        serial = body.get("sn", body.get("serial", body.get("devid")))
        taken = serial is not None and estate.rt.engine.serial_taken(str(serial))
        assert r.status_code < 400 or "already" in r.text or "exists" in r.text or taken, (
            ep.name, r.status_code, r.text)  # fmt: skip
    if face == "push3":  # and its answer comes
        r = await estate.client.post("/sendCommand", json=_push3_relay(estate), headers=p3(estate))
        assert r.status_code < 400, r.text
        await estate.rt.advance(1)
        assert await push3_answers(estate, r.json()), "no answer on the response channel"


def _push3_relay(e: Estate) -> dict[str, Any]:
    return {"command": "SetRelay", "target": "meter",
            "target_id": e.section("push3")["meters"][0],
            "params": {"relay": "Relay_1", "status": "close", "duration": 5}}  # fmt: skip


async def test_huge_numbers_in_cursors_and_limits_get_400_on_every_store(estate: Estate) -> None:
    from switchgear.storage.cursor import encode

    pc = {"Authorization": f"Bearer {estate.section('powercontroller')['token']}"}
    history = f"/api/v1/devices/{plug_id(estate)}/history"
    for seq in (2**63, 10**30):
        cursor = encode(1.0, seq)
        r = await estate.client.get(f"{history}?cursor={cursor}", headers=native(estate))
        assert r.status_code == 400 and SHAPES["native"](r), r.text
        r = await estate.client.get(f"/v1/statuses?cursor={cursor}", headers=pc)
        assert r.status_code == 400 and SHAPES["powercontroller"](r), r.text
    r = await estate.client.get(f"{history}?limit={'9' * 30}", headers=native(estate))
    assert r.status_code == 400 and SHAPES["native"](r), r.text
    r = await estate.client.get(f"/v1/statuses?limit={'9' * 30}", headers=pc)
    assert r.status_code == 400 and SHAPES["powercontroller"](r), r.text


BAD_MODELS = [
    {"type": "cycling", "watts": 100, "on_s": 60, "off_s": 60, "anchor": "noon"},
    {"type": "cycling", "watts": 100, "on_s": 1e-9, "off_s": 1e-9},  # a step per ns
    {"type": "thermostat", "rated_watts": 3000, "voltage_v": "230"},
    {"type": "thermostat", "rated_watts": 3000, "tank_litres": 1e-300},
]


async def test_a_bad_load_model_is_refused_and_the_device_keeps_working(estate: Estate) -> None:
    url = f"/api/v1/sim/devices/{plug_id(estate)}/load"
    for model in BAD_MODELS:
        r = await estate.client.put(
            url, json={"channel": 0, "model": model}, headers=native(estate)
        )
        assert r.status_code == 400 and SHAPES["native"](r), (model, r.text)
    await estate.rt.advance(3600)
    r = await estate.client.put(url, json={"channel": 0, "watts": 500}, headers=native(estate))
    assert r.status_code == 200, r.text
    await estate.rt.advance(60)
    r = await estate.client.get(f"/api/v1/devices/{plug_id(estate)}", headers=native(estate))
    assert r.status_code == 200, r.text
