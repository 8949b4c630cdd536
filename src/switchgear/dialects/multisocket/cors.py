"""CORS for the multisocket API: browser clients (the document's jQuery sample) call it."""

from __future__ import annotations

from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

# what the document's browser sample sends: a JSON body, the gateway key, the id token
ALLOW_HEADERS = "Content-Type, Ocp-Apim-Subscription-Key, Authorization"
ALLOW_METHODS = "GET, POST, OPTIONS"
MAX_AGE_S = "3600"

R = TypeVar("R", bound=Response)


def allow_origin(response: R) -> R:
    """An answer (errors included) a page of any origin may read: the API authenticates
    by headers, never by cookies."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def preflight(request: Request) -> Response:
    """A browser's preflight: no key or token needed, it only asks what may be sent."""
    response = Response(status_code=204)
    response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE_S
    return allow_origin(response)
