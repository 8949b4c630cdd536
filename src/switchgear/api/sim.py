"""Simulation routes: mains, network, load, grid and the clock of the simulated fleet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from switchgear.api.deps import CredentialDep, OperatorDep, RuntimeDep
from switchgear.api.openapi import answers
from switchgear.api.schemas import (
    AdvanceRequest,
    DeviceOut,
    GridRequest,
    LoadRequest,
    OnlineRequest,
    device_out,
    iso,
)
from switchgear.core.ports import SimAction
from switchgear.errors import InvalidInput
from switchgear.runtime import Runtime

router = APIRouter(prefix="/sim", tags=["simulation"])


def _device(rt: Runtime, account_id: int, device_id: int) -> DeviceOut:
    d = rt.engine.device(account_id, device_id)
    return device_out(d, rt.reading(d.id))


@router.post(
    "/devices/{device_id}/power-cycle", response_model=DeviceOut, responses=answers(404, 503)
)
async def power_cycle(rt: RuntimeDep, cred: CredentialDep, device_id: int) -> DeviceOut:
    """Mains off and on: the twin reboots and applies its power-on state."""
    await rt.simulate(cred.account_id, device_id, SimAction("power_cycle"))
    return _device(rt, cred.account_id, device_id)


@router.post("/devices/{device_id}/online", response_model=DeviceOut, responses=answers(404))
async def set_online(
    rt: RuntimeDep, cred: CredentialDep, device_id: int, body: OnlineRequest
) -> DeviceOut:
    """Take a twin off the network (`false`) or bring it back (`true`)."""
    await rt.simulate(cred.account_id, device_id, SimAction("online", online=body.online))
    return _device(rt, cred.account_id, device_id)


@router.put("/devices/{device_id}/load", response_model=DeviceOut, responses=answers(404))
async def set_load(
    rt: RuntimeDep, cred: CredentialDep, device_id: int, body: LoadRequest
) -> DeviceOut:
    """The simulated load behind a channel: constant watts, or a load model."""
    if (body.watts is None) == (body.model is None):
        raise InvalidInput("give exactly one of watts or model", field="watts")
    load: dict[str, Any] = body.model or {
        "type": "constant",
        "watts": body.watts,
        "power_factor": body.power_factor,
    }
    await rt.simulate(
        cred.account_id, device_id, SimAction("load", channel=body.channel, load=load)
    )
    return _device(rt, cred.account_id, device_id)


@router.put("/grid")
async def set_grid(rt: RuntimeDep, cred: CredentialDep, body: GridRequest) -> dict[str, Any]:
    """Grid frequency and voltage for the account's fleet; with `duration_s`, an event that
    returns to nominal after that long (every FFR-enabled controller sees it)."""
    if body.frequency_hz is None and body.voltage_v is None:
        raise InvalidInput("give frequency_hz and/or voltage_v", field="frequency_hz")
    await rt.set_grid(cred.account_id, body.frequency_hz, body.voltage_v, body.duration_s)
    return {
        "frequency_hz": body.frequency_hz,
        "voltage_v": body.voltage_v,
        "duration_s": body.duration_s,
    }


@router.post("/clock/advance", responses=answers(403, 409))
async def advance(rt: RuntimeDep, cred: OperatorDep, body: AdvanceRequest) -> dict[str, Any]:
    """Jump the manual virtual clock forward, firing every timer due on the way.

    The clock is shared by every tenant: only the operator may move it (403 otherwise)."""
    now = await rt.advance(body.seconds)
    return {"now": iso(now), "epoch": now}


@router.get("/clock")
async def clock(rt: RuntimeDep, cred: CredentialDep) -> dict[str, Any]:
    """The virtual clock: now, speed, manual or not."""
    now = rt.clock.now()
    return {"now": iso(now), "epoch": now, "speed": rt.clock.speed, "manual": rt.clock.manual}
