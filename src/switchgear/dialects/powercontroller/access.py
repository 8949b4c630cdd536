"""Where the power controller API takes its token from, and the request body it came with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from switchgear.auth.scopes import KIND_POWERCONTROLLER_TOKEN
from switchgear.core.accounts import Credential
from switchgear.dialects.http import body_bytes, form_pairs, is_form, json_object, nest
from switchgear.errors import InvalidInput, NotAuthenticated
from switchgear.runtime import Runtime

# `Authorization: Bearer X`, and `Bearer: X` as real scripts send it
_BEARER = re.compile(r"^bearer:?\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Call:
    """An authenticated request: runtime, credential, and its body as an object."""

    rt: Runtime
    cred: Credential
    body: dict[str, Any]
    form: bool


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def body_of(request: Request) -> tuple[dict[str, Any], bool]:
    """The body as an object (bracket-notation forms nested), and whether it was a form."""
    if request.method not in ("POST", "PUT"):
        return {}, False
    if is_form(request):
        return nest(await form_pairs(request)), True
    if not (await body_bytes(request)).strip():
        return {}, False
    return await json_object(request), False


async def _token(request: Request) -> str | None:
    """The token wherever this request may carry it, read without judging the body: a
    form that cannot be read carries none."""
    header = request.headers.get("authorization")
    if header is not None:
        m = _BEARER.match(header)
        if m is None:
            raise NotAuthenticated("malformed Authorization header")
        return m.group(1)
    if request.method == "GET":
        return request.query_params.get("access_token")
    if request.method in ("POST", "PUT") and is_form(request):
        try:
            pairs = dict(await form_pairs(request))
        except InvalidInput:
            return None
        return pairs.get("access_token") or pairs.get("token") or None
    return None


async def authenticated(request: Request) -> Call:
    """The header always works; `?access_token=` only on GET; `access_token=` or `token=` only
    in a URL-encoded POST/PUT body. Nowhere else. The token is checked before anything is
    said about the body, as the vendor does: a bad one is 401 whatever the body holds."""
    rt = runtime(request)
    cred = rt.auth.authenticate_jwt(await _token(request), KIND_POWERCONTROLLER_TOKEN)
    body, form = await body_of(request)
    if form:
        for name in ("access_token", "token"):
            body.pop(name, None)
    return Call(rt, cred, body, form)
