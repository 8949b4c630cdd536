"""Liveness, readiness and the metrics page: the routes an operator's tooling calls."""

from __future__ import annotations

import asyncio
import logging
import os

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from switchgear import metrics
from switchgear.api.deps import OperatorDep
from switchgear.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

READY_TIMEOUT_S = 2.0
WORKER_HEADER = "X-Switchgear-Worker"


@router.get("/healthz")
async def healthz() -> Response:
    """The process answers HTTP (nothing else is checked); a header names the process
    (pid) that answered, which tells several API workers apart."""
    return JSONResponse({"status": "ok"}, headers={WORKER_HEADER: str(os.getpid())})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when the database answers (and, with an MQTT link, the broker is connected);
    503 naming the failed check otherwise — never why, which stays in the log."""
    rt: Runtime = request.app.state.runtime
    checks = {"database": await _database(rt)}
    if rt.mqtt is not None:
        checks["broker"] = "ok" if rt.mqtt.transport.connected else "failed"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _database(rt: Runtime) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await rt.store.meta("clock")
    except Exception as err:  # any failure is "not ready"; the reason goes to the log only
        log.warning("readiness: the database did not answer: %r", err)
        return "failed"
    return "ok"


@router.get("/metrics")
async def prometheus(request: Request, _operator: OperatorDep) -> Response:
    """Prometheus text exposition; the operator's bearer token only."""
    rt: Runtime = request.app.state.runtime
    return Response(metrics.render(rt), media_type=metrics.CONTENT_TYPE)
