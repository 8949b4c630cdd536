"""The native API router: every `/api/v1` route in one place."""

from __future__ import annotations

from fastapi import APIRouter

from switchgear.api import devices, events, sim, tokens

router = APIRouter(prefix="/api/v1")
router.include_router(devices.router)
router.include_router(tokens.router)
router.include_router(events.router)
router.include_router(sim.router)
