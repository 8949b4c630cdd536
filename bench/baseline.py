"""The baseline: a bare Starlette app returning a small JSON, served like switchgear is."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ITEM = {"id": 1, "serial": "SPG900001", "family": "plug", "on": True, "power_w": 60.0}


async def item(request: Request) -> JSONResponse:
    return JSONResponse(ITEM)


async def echo(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"ok": True, "echo": body})


async def item_close(request: Request) -> JSONResponse:
    """The same small JSON, closing the connection as a smart-MAIC meter does."""
    return JSONResponse(ITEM, headers={"Connection": "close"})


app = Starlette(
    routes=[
        Route("/item/{id}", item),
        Route("/item-close/{id}", item_close),
        Route("/echo", echo, methods=["POST"]),
    ]
)
