"""Answers made outside the handlers — an unknown path, a trailing slash, a method the path
does not take, a body too large, a missing bearer token, a form with a capitalised media
type — each in the error shape of the face the path belongs to."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.reliability.conftest import Estate
from tests.reliability.faces import PLANT, SHAPES, Headers, ms, native, p3, pc, pc_device, sp

NO_HEADERS: Callable[[Estate], Headers] = lambda e: {}  # noqa: E731


def plant(e: Estate) -> str:
    return PLANT.format(e.section("multisocket")["plant_id"])


def assert_shaped(face: str, r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:200])
    assert not r.headers.get("content-type", "").startswith("text/plain")
    assert SHAPES[face](r), r.text[:200]


# (face, method, path, headers, every method the path takes)
WRONG_METHOD = [
    ("native", "PUT", lambda e: "/api/v1/tokens", native, {"GET", "POST"}),
    ("smartplug", "GET", lambda e: "/provider/send", sp, {"POST"}),
    ("smartplug", "POST", lambda e: "/v1/controllers", sp, {"GET", "HEAD"}),
    ("multisocket", "PUT", plant, ms, {"GET", "HEAD", "OPTIONS", "POST"}),
    ("powercontroller", "DELETE", lambda e: f"/v1/devices/{pc_device(e)}", pc,
     {"GET", "HEAD", "PUT"}),
    ("powercontroller", "PATCH", lambda e: "/v1/devices", pc, {"GET", "HEAD", "POST"}),
    ("push3", "GET", lambda e: "/sendCommand", p3, {"POST"}),
    ("meterhttp", "POST", lambda e: "/?page=getdata&devid=1&devpass=2", NO_HEADERS,
     {"GET", "HEAD"}),
]  # fmt: skip


async def test_a_wrong_method_gets_405_in_the_faces_shape_naming_every_allowed_method(
    estate: Estate,
) -> None:
    for face, method, path, headers, allow in WRONG_METHOD:
        r = await estate.client.request(method, path(estate), headers=headers(estate))
        assert_shaped(face, r, 405)
        assert {m.strip() for m in r.headers["allow"].split(",")} == allow, (face, method)


# (face, method, path, headers): paths no route takes, trailing slashes among them
UNKNOWN = [
    ("native", "GET", lambda e: "/api/v1/nothing", native),
    ("native", "GET", lambda e: "/api/v1/tokens/", native),
    ("smartplug", "GET", lambda e: "/provider/nothing", sp),
    ("smartplug", "POST", lambda e: "/provider/send/", sp),
    ("smartplug", "GET", lambda e: "/v1/controllers/", sp),
    ("smartplug", "POST", lambda e: "/v1/auth/nothing", NO_HEADERS),
    ("multisocket", "GET", lambda e: "/multioutlet/nothing", ms),
    ("multisocket", "POST", lambda e: plant(e) + "/", ms),
    ("powercontroller", "GET", lambda e: f"/v1/devices/{pc_device(e)}/nothing", pc),
    ("powercontroller", "GET", lambda e: "/v1/statuses/", pc),
    ("push3", "POST", lambda e: "/sendCommand/", p3),
    ("push3", "GET", lambda e: "/sub/", p3),
]


async def test_a_path_no_route_takes_gets_404_in_the_faces_shape_never_a_redirect(
    estate: Estate,
) -> None:
    for face, method, path, headers in UNKNOWN:
        r = await estate.client.request(method, path(estate), headers=headers(estate), json={})
        assert_shaped(face, r, 404)


# (face, path, headers, size): over the face's own limit, or over the server's
TOO_LARGE = [
    ("multisocket", plant, ms, 100 * 1024),
    ("multisocket", plant, ms, 2 << 20),
    ("smartplug", lambda e: "/provider/send", sp, 100 * 1024),
    ("powercontroller", lambda e: f"/v1/devices/{pc_device(e)}/command", pc, 100 * 1024),
    ("push3", lambda e: "/sendCommand", p3, 100 * 1024),
    ("meterhttp", lambda e: "/?page=getdata&devid=1&devpass=2", NO_HEADERS, 2 << 20),
    ("native", lambda e: "/api/v1/tokens", native, 2 << 20),
]


async def test_a_body_over_the_faces_limit_gets_413_in_its_shape(estate: Estate) -> None:
    before = estate.fingerprint()
    for face, path, headers, size in TOO_LARGE:
        body = b'{"status": [true], "padding": "' + b"x" * size + b'"}'
        method = "GET" if face == "meterhttp" else "POST"
        r = await estate.client.request(
            method, path(estate), content=body,
            headers={**headers(estate), "Content-Type": "application/json"},
        )  # fmt: skip
        assert_shaped(face, r, 413)
    assert estate.fingerprint() == before


async def test_a_smart_plug_401_asks_for_a_bearer_token(estate: Estate) -> None:
    for path in ("/provider/fetch", "/v1/controllers", "/v1/provider/send"):
        for headers in ({}, {"Authorization": "Bearer garbage"}):
            method = "GET" if path == "/v1/controllers" else "POST"
            r = await estate.client.request(
                method, path, headers=headers, json={"serial_number": "x"}
            )
            assert_shaped("smartplug", r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer"), (path, headers)


@pytest.mark.parametrize(
    "media_type",
    ["Application/X-WWW-Form-Urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED; Charset=UTF-8"],
)
async def test_form_media_types_are_case_insensitive(estate: Estate, media_type: str) -> None:
    account, client = estate.creds["account"], estate.section("smartplug")
    login = await estate.client.post(
        "/v1/auth/login",
        content=str(httpx.QueryParams({
            "client_id": client["client_id"], "client_secret": client["client_secret"],
            "username": account["email"], "password": account["password"],
        })),
        headers={"Content-Type": media_type},
    )  # fmt: skip
    assert login.status_code == 200, login.text
    assert login.json()["auth"]["token_type"] == "Bearer"
    signin = await estate.client.post(
        "/v1/signin",
        content=str(httpx.QueryParams(
            {"user[email]": account["email"], "user[password]": account["password"]}
        )),
        headers={"Content-Type": media_type},
    )  # fmt: skip
    assert signin.status_code == 200, signin.text
