"""create_app(settings): the ASGI app wiring the runtime, the native API and the dialects."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from switchgear import __version__, edges, gctune, health, logsafe, metasweep, metrics
from switchgear.api import docspage, openapi, problems
from switchgear.api.jsonbody import JsonBodies
from switchgear.api.routes import router as native_router
from switchgear.bodylimit import BodyLimit
from switchgear.core.clock import SystemClock
from switchgear.core.ports import Store
from switchgear.dialects import dialects
from switchgear.ffr.service import FfrService
from switchgear.observe import Observe
from switchgear.routing import Root
from switchgear.runtime import Runtime
from switchgear.settings import Settings
from switchgear.web import routes as dashboard_routes

log = logging.getLogger(__name__)


OnStart = Callable[[Runtime], Awaitable[None]]


def create_app(
    settings: Settings | None = None, store: Store | None = None, on_start: OnStart | None = None
) -> Starlette:
    """The whole server as one ASGI app; the runtime starts in its lifespan.

    The root is a plain Starlette router holding the vendor dialects' routes, so a vendor
    hot path pays for one route match and nothing else; whatever they do not match goes
    to the native API, a FastAPI app (OpenAPI at /api/openapi.json) kept in `state.api`.
    """
    settings = settings or Settings()
    logsafe.install()
    api = native_api()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # no collector passes while the start builds what lives on (a young pass over a
        # 100,000-device registry walked all of it, several times); tuned() freezes it
        # and turns the collector on for serving
        with gctune.paused():
            rt = await Runtime.start(settings, store)
            app.state.runtime = api.state.runtime = rt
            rt.journal.on_commit = metrics.observe_commit
            try:
                for dialect in dialects():
                    if dialect.start is not None:
                        await dialect.start(rt)
                await FfrService.start(rt)
                if on_start is not None:
                    await on_start(rt)
                with gctune.tuned():
                    rt.started.set()  # a large fleet's late twins boot from here on
                    rt.spawn(metasweep.keep_swept(rt.store, SystemClock()), "meta-sweep")
                    yield
            finally:
                await rt.stop()

    routes: list[BaseRoute] = []
    faces: dict[int, str] = {}  # id(route) -> its face (routes compare equal, hash not)
    for dialect in dialects():
        for route in dialect.routes():
            routes.append(route)
            faces[id(route)] = dialect.name
    routes += dashboard_routes()  # the dashboard at /ui/
    # No slash redirects: a vendor client follows no 307 to a path its API does not have;
    # what no route takes gets its face's 404 (405 with every allowed method) instead.
    root = Root(
        routes,
        default=edges.Fallback(api),
        lifespan=lifespan,
        middleware=[Middleware(Observe, faces=faces), Middleware(BodyLimit)],
        exception_handlers={HTTPException: edges.http_error, Exception: edges.server_error},
        redirect_slashes=False,
    )
    root.state.api = api
    return root


def native_api() -> FastAPI:
    """The native REST API: FastAPI for its OpenAPI document and request validation."""
    api = FastAPI(
        title="switchgear",
        version=__version__,
        summary="Native, vendor-neutral API of the switchgear control plane",
        openapi_url="/api/openapi.json",
        docs_url=None,  # docspage: the same page, assets served locally
        redoc_url=None,
        redirect_slashes=False,
    )
    problems.install(api)
    docspage.install(api, "/api/openapi.json")
    api.add_middleware(JsonBodies)
    api.include_router(native_router)
    openapi.install(api)
    api.include_router(health.router)
    return api
