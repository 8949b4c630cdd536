"""create_app(settings): the ASGI app wiring the runtime, the native API and the dialects."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from switchgear import __version__, logsafe
from switchgear.api import problems
from switchgear.api.routes import router as native_router
from switchgear.bodylimit import BodyLimit
from switchgear.core.ports import Store
from switchgear.dialects import dialects
from switchgear.runtime import Runtime
from switchgear.settings import Settings

log = logging.getLogger(__name__)


OnStart = Callable[[Runtime], Awaitable[None]]


def create_app(
    settings: Settings | None = None, store: Store | None = None, on_start: OnStart | None = None
) -> FastAPI:
    """The whole server as one ASGI app; the runtime starts in its lifespan."""
    settings = settings or Settings()
    logsafe.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await Runtime.start(settings, store)
        app.state.runtime = rt
        try:
            for dialect in dialects():
                if dialect.start is not None:
                    await dialect.start(rt)
            if on_start is not None:
                await on_start(rt)
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="switchgear",
        version=__version__,
        summary="Native, vendor-neutral API of the switchgear control plane",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodyLimit)
    app.include_router(native_router)
    for dialect in dialects():
        app.router.routes.extend(dialect.routes())

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        return JSONResponse({"ok": True, "now": rt.clock.now(), "version": __version__})

    return app
