"""Bad input on every face: each case gets a 4xx in that face's error shape, never a 500,
and nothing stored changes (relays, settings, configuration, credentials, registry)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import ON_EVERY_STORE, ON_POSTGRES_TOO, Estate
from tests.reliability.faces import ENDPOINTS, SHAPES, Endpoint

EXAMPLES = 60  # per endpoint; docs/reliability.md records the totals
RAN: Counter[str] = Counter()

# Fields whose absence makes the request invalid (dropping an optional one is a valid call).
REQUIRED: dict[str, tuple[str, ...]] = {
    "switch": ("action",),
    "credentials": ("kind",),
    "meters": ("url", "devid", "devpass"),
    "advance": ("seconds",),
    "fetch": ("serial_number",),
    "send": ("serial_number", "command"),
    "set": ("status",),
    "command": ("command",),
    "configure": ("info",),
    "add": ("sn", "country"),
    "signin": ("user",),
    "sendCommand": ("command", "target", "target_id"),
}


def _set(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


def cases(ep: Endpoint) -> st.SearchStrategy[tuple[str, Any]]:
    """(kind of damage, what) for one endpoint."""
    options: list[st.SearchStrategy[tuple[str, Any]]] = []
    if ep.body is not None:
        options += [
            st.tuples(
                st.just("field"),
                st.sampled_from(sorted(ep.fields)).flatmap(
                    lambda f: st.tuples(st.just(f), ep.fields[f])
                ),
            ),
            st.tuples(st.just("raw"), st.binary(max_size=64).filter(_not_object)),
            st.tuples(
                st.just("toplevel"),
                st.one_of(
                    st.lists(st.integers(), max_size=3),
                    st.integers(),
                    st.text(max_size=5),
                    st.none(),
                    st.booleans(),
                ),
            ),
            st.tuples(st.just("oversized"), st.integers(65 * 1024, 300 * 1024)),
        ]
        if REQUIRED.get(ep.name):
            options.append(st.tuples(st.just("drop"), st.sampled_from(REQUIRED[ep.name])))
    for name, strategy in ep.query.items():
        options.append(st.tuples(st.just("query"), st.tuples(st.just(name), strategy)))
    if ep.face not in ("meterhttp",) and ep.name != "signin":
        options.append(st.tuples(st.just("noauth"), st.sampled_from(["none", "garbage"])))
    return st.one_of(options)


def _not_object(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except (ValueError, UnicodeDecodeError):
        return True


async def send(e: Estate, ep: Endpoint, damage: str, what: Any) -> Any:
    headers = dict(ep.headers(e))
    query: dict[str, str] | None = None
    content: bytes | None = None
    body = ep.body(e) if ep.body is not None else None
    if damage == "field":
        body = _set(body or {}, what[0], what[1])
    elif damage == "drop":
        body = {k: v for k, v in (body or {}).items() if k != what}
    elif damage == "toplevel":
        body = what
    elif damage == "raw":
        content = what
    elif damage == "oversized":
        body = {**(body or {}), "padding": "x" * what}
    elif damage == "query":
        query = {what[0]: what[1] if isinstance(what[1], str) else json.dumps(what[1])}
    elif damage == "noauth":
        for h in ("Authorization", "Ocp-Apim-Subscription-Key"):
            headers.pop(h, None)
        if what == "garbage":
            headers["Authorization"] = "Bearer sg_nothing.atall"
    if body is not None and content is None:
        content = json.dumps(body).encode()
    if content is not None:
        headers["Content-Type"] = "application/json"
    return await e.client.request(ep.method, ep.url(e, query), content=content, headers=headers)


def generate(ep: Endpoint) -> list[tuple[str, Any]]:
    """Hypothesis draws the cases (deterministically); the async test sends them."""
    drawn: list[tuple[str, Any]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=cases(ep))
    def draw(case: tuple[str, Any]) -> None:
        drawn.append(case)

    draw()
    return drawn


@ON_EVERY_STORE
@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda ep: f"{ep.face}-{ep.name}")
async def test_bad_input_gets_a_4xx_in_the_faces_shape_and_changes_nothing(
    estate: Estate, ep: Endpoint
) -> None:
    before = estate.fingerprint()
    for damage, what in generate(ep):
        r = await send(estate, ep, damage, what)
        RAN[ep.face] += 1
        assert 400 <= r.status_code < 500, (damage, what, r.status_code, r.text[:300])
        assert SHAPES[ep.face](r), (damage, what, r.status_code, r.text[:300])
    assert estate.fingerprint() == before


NUL_TEXTS = [(ep, name) for ep in ENDPOINTS for name in ep.texts]


@ON_POSTGRES_TOO
@pytest.mark.parametrize(
    ("ep", "name"), NUL_TEXTS, ids=[f"{ep.face}-{ep.name}-{name}" for ep, name in NUL_TEXTS]
)
async def test_text_holding_a_nul_is_refused_in_the_faces_shape_and_stores_nothing(
    estate: Estate, ep: Endpoint, name: str
) -> None:
    """PostgreSQL keeps no NUL in text: a face refuses one (a secret holding one is just
    wrong), never answers 500 from the store, and keeps nothing of the request."""
    before = estate.fingerprint()
    accounts = await estate.rt.store.accounts()
    for where in ("start", "middle", "end"):
        if name.startswith("?"):
            valid = dict(httpx.QueryParams(ep.path(estate).partition("?")[2]))
            value = _nul(where, valid.get(name[1:], "x"))
            r = await send(estate, ep, "query", (name[1:], value))
        else:
            value = _nul(where, str(_get(ep.body(estate) if ep.body else {}, name) or "00000000"))
            r = await send(estate, ep, "field", (name, value))
        assert 400 <= r.status_code < 500, (name, value, r.status_code, r.text[:300])
        assert SHAPES[ep.face](r), (name, value, r.status_code, r.text[:300])
    assert estate.fingerprint() == before
    assert await estate.rt.store.accounts() == accounts
    texts = [c.desc for a in accounts for c in estate.rt.auth.list(a.id)]
    texts += [d.name for d in estate.rt.engine.all_devices()]
    assert not any("\x00" in t for t in texts)


def _nul(where: str, text: str) -> str:
    """One character of `text` made a NUL (its length kept: a PIN stays 8 characters)."""
    i = {"start": 0, "middle": len(text) // 2}.get(where, len(text) - 1)
    return text[:i] + "\x00" + text[i + 1 :]


def _get(body: dict[str, Any], dotted: str) -> Any:
    node: Any = body
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


@ON_EVERY_STORE
@pytest.mark.parametrize(
    ("face", "path"),
    [("native", "/api/v1/tokens"), ("smartplug", "/provider/send"), ("push3", "/sendCommand"),
     ("powercontroller", "/v1/signin")],
)  # fmt: skip
async def test_a_body_over_a_megabyte_is_refused_before_it_is_read(
    estate: Estate, face: str, path: str
) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65_536  # streamed, no Content-Length

    headers = {"Content-Type": "application/json", "Authorization": "Bearer "
               + (estate.creds["account"]["token"] if path.startswith("/api") else
                  estate.section("smartplug")["access_token"])}  # fmt: skip
    declared = await estate.client.post(
        path, content=b"{" + b" " * (2 << 20) + b"}", headers=headers
    )
    shape = SHAPES[face]
    assert declared.status_code == 413 and shape(declared), declared.text
    streamed = await estate.client.post(path, content=chunks(), headers=headers)
    assert streamed.status_code == 413 and shape(streamed), streamed.text
