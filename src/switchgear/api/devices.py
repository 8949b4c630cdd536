"""Native routes for devices: list, show, switch, settings, history, commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from switchgear.api.deps import CredentialDep, RuntimeDep, json_response
from switchgear.api.openapi import answers
from switchgear.api.schemas import (
    AdoptRequest,
    CommandOut,
    DeviceOut,
    HistoryOut,
    MeterRequest,
    SettingsRequest,
    SwitchRequest,
    command_out,
    device_out,
    status_out,
)
from switchgear.core.engine import raise_for_state
from switchgear.core.model import Action, Configure, Device, Family, SettingsPatch, Switch
from switchgear.dialects.meterhttp.wire import DEFAULT_VERSION
from switchgear.errors import Conflict, InvalidInput, MetersCapped
from switchgear.registration import admit
from switchgear.runtime import Runtime

router = APIRouter(tags=["devices"])

DAY = 86_400.0


@router.get("/devices", response_model=list[DeviceOut])
async def list_devices(
    rt: RuntimeDep,
    cred: CredentialDep,
    family: Family | None = None,
    tag: str | None = None,
) -> list[DeviceOut]:
    """The account's devices with their current state."""
    eng = rt.engine
    return [device_out(d, rt.reading(d.id)) for d in eng.devices(cred.account_id, family, tag)]


@router.post("/devices", response_model=DeviceOut, status_code=201, responses=answers(409, 429))
async def adopt(rt: RuntimeDep, cred: CredentialDep, body: AdoptRequest) -> DeviceOut:
    """Adopt a real Shelly that talks to the server's MQTT broker (409 without one).

    An account adopts (or tries to) at most `registrations_per_hour` devices an hour."""
    await admit(rt, cred.account_id)
    d = await rt.adopt(cred.account_id, body.protocol, body.mqtt_id, body.name, body.serial)
    return device_out(d, rt.engine.shadow(d.id))


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=answers(404))
async def get_device(rt: RuntimeDep, cred: CredentialDep, device_id: int) -> Response:
    """One device: model, channels, state, settings, readings."""
    d = rt.engine.device(cred.account_id, device_id)
    return json_response(device_out(d, rt.reading(d.id)))


@router.post(
    "/devices/{device_id}/channels/{channel}/switch",
    response_model=CommandOut,
    responses=answers(404, 422, 503, 504),
)
async def switch(
    rt: RuntimeDep, cred: CredentialDep, device_id: int, channel: int, body: SwitchRequest
) -> CommandOut:
    """Switch a channel now or after `delay`, optionally for `duration` seconds."""
    cmd = Switch(Action(body.action), channel, body.delay, body.duration)
    rec = await rt.engine.command(cred.account_id, device_id, cmd)
    raise_for_state(rec)
    return command_out(rec)


@router.patch(
    "/devices/{device_id}/settings", response_model=DeviceOut, responses=answers(404, 422, 503, 504)
)
async def patch_settings(
    rt: RuntimeDep, cred: CredentialDep, device_id: int, body: SettingsRequest
) -> DeviceOut:
    """Change power-on state, flip-back timers or the over-power limit."""
    fields = body.model_dump(exclude_unset=True, exclude={"channel"})
    if not fields:
        raise InvalidInput("no setting given", field="body")
    patch = SettingsPatch(**fields)
    rec = await rt.engine.command(cred.account_id, device_id, Configure(patch, body.channel))
    raise_for_state(rec)
    d = rt.engine.device(cred.account_id, device_id)
    return device_out(d, rt.reading(d.id))


DEVID = re.compile(r"^[0-9]{10}$")
# one answer for a malformed devid and for one already registered (to anyone)
DEVID_REFUSED = "devid: not a 10-digit device id that can be added"


@router.post("/meters", response_model=DeviceOut, status_code=201, responses=answers(409, 429))
async def add_meter(rt: RuntimeDep, cred: CredentialDep, body: MeterRequest) -> DeviceOut:
    """Add a real smart-MAIC meter: switchgear polls it within its rate limit.

    Its URL must resolve into the server's allowed networks; an account polls at most
    `meter_max_per_account` meters and registers at most `registrations_per_hour` devices.
    """
    await admit(rt, cred.account_id)
    if not DEVID.match(body.devid):
        raise InvalidInput(DEVID_REFUSED, field="devid")
    await rt.poller.guard.check(body.url)
    async with rt.poller.adding:
        if rt.engine.serial_taken(body.devid):
            raise InvalidInput(DEVID_REFUSED, field="devid")
        if rt.poller.count(cred.account_id) >= rt.settings.meter_max_per_account:
            raise Conflict(
                f"the account polls {rt.poller.count(cred.account_id)} meters, the most"
                " this server allows",
                field="url",
            )
        try:  # the store counts again in its write: another worker may be adding one
            device = await _add_meter(rt, cred.account_id, body)
        except MetersCapped:
            raise
        except Conflict as err:  # a registration that raced this one
            raise InvalidInput(DEVID_REFUSED, field="devid") from err
    return device_out(device, rt.engine.shadow(device.id))


async def _add_meter(rt: Runtime, account_id: int, body: MeterRequest) -> Device:
    version = body.version or DEFAULT_VERSION[body.model]
    return await rt.add_device(
        Device(
            id=0,
            account_id=account_id,
            serial=body.devid,
            model=body.model,
            name=body.name or f"meter {body.devid}",
            created_at=rt.clock.now(),
            tags=("polled",),
            attrs={"url": body.url, "devpass": body.devpass, "version": version},
            simulated=False,
        ),
        meters_most=rt.settings.meter_max_per_account,
    )


@router.get("/commands/{command_id}", response_model=CommandOut, responses=answers(404))
async def get_command(rt: RuntimeDep, cred: CredentialDep, command_id: str) -> CommandOut:
    """A command's lifecycle."""
    return command_out(await rt.engine.get_command(cred.account_id, command_id))


def epoch(t: datetime) -> float:
    """Seconds since the epoch; a time without an offset is UTC, as every time here."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@router.get("/devices/{device_id}/history", response_model=HistoryOut, responses=answers(404))
async def history(
    rt: RuntimeDep,
    cred: CredentialDep,
    device_id: int,
    start: Annotated[
        datetime | None, Query(description="ISO 8601 (UTC without an offset); default: a day ago")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="ISO 8601 (UTC without an offset); default: now")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> HistoryOut:
    """Status records, oldest first, paged by `cursor`."""
    now = rt.clock.now()
    t1 = epoch(end) if end else now + 1e-6
    t0 = epoch(start) if start else t1 - DAY
    if t0 > t1:
        raise InvalidInput("start is after end", field="start")
    page = await rt.engine.history(cred.account_id, [device_id], t0, t1, cursor, limit)
    return HistoryOut(statuses=[status_out(r) for r in page.records], next_cursor=page.next_cursor)
