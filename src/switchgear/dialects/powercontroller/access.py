"""Where the power controller API takes its token from, and the request body it came with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from switchgear.auth.scopes import KIND_POWERCONTROLLER_TOKEN
from switchgear.core.accounts import Credential
from switchgear.dialects.http import body_bytes, form_pairs, is_form, json_object, nest
from switchgear.errors import NotAuthenticated
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


async def authenticated(request: Request) -> Call:
    """The header always works; `?access_token=` only on GET; `access_token=` or `token=` only
    in a URL-encoded POST/PUT body. Nowhere else."""
    rt = runtime(request)
    body, form = await body_of(request)
    token: str | None = None
    header = request.headers.get("authorization")
    if header is not None:
        m = _BEARER.match(header)
        if m is None:
            raise NotAuthenticated("malformed Authorization header")
        token = m.group(1)
    elif request.method == "GET":
        token = request.query_params.get("access_token")
    elif form:
        for name in ("access_token", "token"):
            value = body.get(name)
            if isinstance(value, str) and value:
                token = value
                break
    for name in ("access_token", "token"):
        if form:
            body.pop(name, None)
    cred = rt.auth.authenticate_jwt(token, KIND_POWERCONTROLLER_TOKEN)
    return Call(rt, cred, body, form)
