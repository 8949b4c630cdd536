"""FFR aggregation routes: programmes, groups, events and their evidence."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StrictInt
from starlette.responses import Response

from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.api.openapi import answers
from switchgear.api.schemas import Strict, iso
from switchgear.core.ffr import PROGRAMMES, programme, unobserved
from switchgear.core.model import MAX_TAG, Json
from switchgear.errors import InvalidInput
from switchgear.ffr.forecast import forecast
from switchgear.ffr.service import ClosedEvent, FfrService, Group, devices_of

router = APIRouter(prefix="/ffr", tags=["ffr"])
TIMES = ("started_at", "crossed_at", "opened_at", "closed_at", "from", "to")


class GroupRequest(Strict):
    name: str = Field(min_length=1, max_length=200)
    programme: str | dict[str, Any]
    device_ids: list[StrictInt] | None = Field(default=None, max_length=100_000)
    tag: str | None = Field(default=None, min_length=1, max_length=MAX_TAG)
    contracted_kw: float = Field(strict=True, gt=0, lt=1e9, allow_inf_nan=False)


def _times(d: dict[str, Json]) -> dict[str, Json]:
    return {k: iso(v) if k in TIMES and isinstance(v, float | int) else v for k, v in d.items()}


def _group(g: Group) -> dict[str, Json]:
    out = g.to_json()
    del out["account_id"], out["previous"]
    out["created_at"] = iso(g.created_at)
    return out


@router.get("/programmes")
async def programmes(cred: CredentialDep) -> list[dict[str, Json]]:
    """The preset programmes (a group may also bring its own: `programme` as an object)."""
    return [p.to_json() for p in PROGRAMMES]


NO_MATCH = (
    "No device matched (device_ids is empty, or no device of the account has the tag), or "
    "every device named was refused: `refused` lists each with its reason; nothing is created"
)


@router.post("/groups", status_code=201, responses=answers(404, 409, 422, s422=NO_MATCH))
async def create_group(rt: RuntimeDep, cred: CredentialDep, body: GroupRequest) -> dict[str, Json]:
    """Enrol controllers (by ids or by tag) in a programme with a contracted capacity;
    those that cannot serve are listed in `refused` (422, and no group, when the ids or
    the tag name no device or every one is refused: a group of none could serve nothing)."""
    if (body.device_ids is None) == (body.tag is None):
        raise InvalidInput("give exactly one of device_ids or tag", field="device_ids")
    p = programme(body.programme)
    ids = devices_of(rt, cred.account_id, body.device_ids, body.tag)
    svc = FfrService.of(rt)
    field = "device_ids" if body.tag is None else "tag"
    g = await svc.create_group(cred.account_id, body.name, p, body.contracted_kw, ids, field)
    return {**_group(g), "available_kw": svc.available_kw(g)}


@router.get("/groups")
async def list_groups(rt: RuntimeDep, cred: CredentialDep) -> list[dict[str, Json]]:
    svc = FfrService.of(rt)
    return [_group(g) for g in svc.account_groups(cred.account_id)]


@router.get("/groups/{group_id}", responses=answers(404))
async def get_group(rt: RuntimeDep, cred: CredentialDep, group_id: int) -> dict[str, Json]:
    """The group with its capacity now and a 24-hour hourly forecast (what to bid)."""
    svc = FfrService.of(rt)
    g = svc.group(cred.account_id, group_id)
    now_w = {i: svc.power_w(i) for i in g.device_ids}
    rows = await forecast(rt, cred.account_id, now_w)
    return {
        **_group(g),
        "available_kw": round(sum(now_w.values()) / 1000, 3),
        "forecast": [{**r, "hour": iso(r["hour"])} for r in rows],
    }


@router.delete("/groups/{group_id}", responses=answers(404, 409))
async def delete_group(rt: RuntimeDep, cred: CredentialDep, group_id: int) -> dict[str, Json]:
    """Unenrol every device, restoring the FFR settings each had before, and delete the
    group (409 while one of its events is in progress). Its events stay."""
    return await FfrService.of(rt).delete_group(cred.account_id, group_id)


@router.delete("/groups/{group_id}/devices/{device_id}", responses=answers(404, 409))
async def unenrol(
    rt: RuntimeDep, cred: CredentialDep, group_id: int, device_id: int
) -> dict[str, Json]:
    """Take one device out of the group, restoring its FFR settings (409 while an event of
    the group is in progress)."""
    return await FfrService.of(rt).unenrol(cred.account_id, group_id, device_id)


class PrequalifyRequest(Strict):
    frequency_hz: float | None = Field(strict=True, default=None, ge=40, le=70, allow_inf_nan=False)
    hold_s: float | None = Field(strict=True, default=None, gt=0, le=3600, allow_inf_nan=False)


@router.post("/groups/{group_id}/prequalification", status_code=202, responses=answers(404, 409))
async def prequalify(
    rt: RuntimeDep, cred: CredentialDep, group_id: int, body: PrequalifyRequest | None = None
) -> dict[str, Json]:
    """Run the programme's test on the simulated grid of the account: step below the
    threshold, hold, restore. The event's report is ready when its logging window ends."""
    body = body or PrequalifyRequest()
    ev = await FfrService.of(rt).prequalify(
        cred.account_id, group_id, body.frequency_hz, body.hold_s
    )
    p = ev.group.programme
    return {
        "event_id": ev.id,
        "frequency_hz": ev.steps[-1][1],
        "started_at": iso(ev.crossed_at),
        "report_at": iso(ev.crossed_at + p.log_after_s),
    }


@router.get("/events", responses=answers(404))
async def list_events(
    rt: RuntimeDep, cred: CredentialDep, group: Annotated[int | None, Query()] = None
) -> list[dict[str, Json]]:
    """The account's events (of one group), newest first."""
    svc = FfrService.of(rt)
    if group is not None:
        svc.group(cred.account_id, group)
    await svc.settled()
    return [_times(e) for e in await svc.events(cred.account_id, group)]


async def _event(rt: RuntimeDep, account_id: int, event_id: int) -> ClosedEvent:
    svc = FfrService.of(rt)
    await svc.settled()
    return await svc.event(account_id, event_id)


@router.get("/events/{event_id}", responses=answers(404))
async def get_event(rt: RuntimeDep, cred: CredentialDep, event_id: int) -> dict[str, Json]:
    """The event's report: per device and for the group, with the compliance verdict."""
    ev = await _event(rt, cred.account_id, event_id)
    report = _times(dict(ev.report))
    report["devices"] = [_times(d) for d in ev.report["devices"]]
    about = report.get("evidence")
    if isinstance(about, dict):
        gaps = about.get("unobserved")
        shown = [_times(g) for g in gaps if isinstance(g, dict)] if isinstance(gaps, list) else []
        about = {**about, "unobserved": shown}
        report["evidence"] = about
    return report


@router.get("/events/{event_id}/evidence.csv", response_class=Response, responses=answers(404))
async def get_evidence(rt: RuntimeDep, cred: CredentialDep, event_id: int) -> Response:
    """Frequency and the group's active power at the programme's logging resolution; each
    row also states the resolution the power actually had (`power_resolution_s`: the
    logging resolution where every device's power is known at every instant, else the
    longest time between a device's reports) and whether the server observed that
    instant (`observed`: false while it was down)."""
    ev = await _event(rt, cred.account_id, event_id)
    p = ev.programme
    text, resolution = evidence_csv(ev)
    reported = sum(1 for t in ev.traces if t.resolution_s > 0)
    exact = len(ev.traces) - reported
    source = f"{exact} simulated twins (exact at every instant), {reported} by their reports"
    return Response(
        text,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="ffr-event-{event_id}.csv"',
            "X-Resolution-S": f"{p.resolution_s:g}",
            "X-Power-Resolution-S": f"{resolution:g}",
            "X-Source": source,
        },
    )


def evidence_csv(ev: ClosedEvent) -> tuple[str, float]:
    """The evidence file, and the resolution its power actually had (stated in each row)."""
    resolution = max([ev.programme.resolution_s, *(t.resolution_s for t in ev.traces)])
    res = f"{resolution:g}"
    lines = ["time,frequency_hz,active_power_kw,power_resolution_s,observed"]
    lines += [
        f"{iso(t)},{f:.3f},{kw:.3f},{res},{'false' if unobserved(t, ev.gaps) else 'true'}"
        for t, f, kw in FfrService.evidence(ev)
    ]
    return "\n".join(lines) + "\n", resolution
