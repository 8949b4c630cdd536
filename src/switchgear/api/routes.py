"""The native API router: every `/api/v1` route in one place."""

from __future__ import annotations

from fastapi import APIRouter, Security

from switchgear.api import credentials, devices, events, ffr, imports, sim, tokens
from switchgear.api.deps import bearer_scheme

# The bearer scheme is declared for the OpenAPI document; get_credential checks the token.
secured = [Security(bearer_scheme)]
router = APIRouter(prefix="/api/v1")
router.include_router(devices.router, dependencies=secured)
router.include_router(imports.router, dependencies=secured)
router.include_router(tokens.router)
router.include_router(credentials.router, dependencies=secured)
router.include_router(events.router, dependencies=secured)
router.include_router(sim.router, dependencies=secured)
router.include_router(ffr.router, dependencies=secured)
