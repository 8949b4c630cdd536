"""Native bulk onboarding: `POST /api/v1/devices:import` (CSV or JSON lines) and its jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from switchgear import onboarding
from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.api.openapi import answers
from switchgear.errors import InvalidInput
from switchgear.importjobs import Job, Jobs
from switchgear.importrows import CSV, JSONL, JSONL_TYPES

router = APIRouter(tags=["devices"])

SYNC_ROWS = 1_000  # an import of more rows (or one that asks) answers 202 with a job

IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            CSV: {
                "schema": {"type": "string"},
                "example": "serial,model,name,tags\nSPG-NEW-0001,SHPLG-1,Hall lamp,hall;lights\n",
            },
            JSONL: {
                "schema": {"type": "string"},
                "example": '{"serial": "SPG-NEW-0002", "model": "SHPLG-1", "name": "Desk"}\n'
                '{"protocol": "shelly-gen1", "address": "shellyplug-A1B2C3", "name": "Kettle"}\n',
            },
        },
    }
}


class RefusalOut(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    rows: int
    imported: int
    unchanged: int
    refused: list[RefusalOut]


class JobOut(ImportOut):
    """An import job: `validated` rows checked so far, then `imported` as batches land."""

    id: str
    state: str  # queued, validating, importing, done, failed
    validated: int
    error: str | None


def _report(report: onboarding.Report) -> ImportOut:
    return ImportOut(
        rows=report.rows,
        imported=report.imported,
        unchanged=report.unchanged,
        refused=[RefusalOut(line=r.line, reason=r.reason) for r in report.refused],
    )


def job_out(job: Job) -> JobOut:
    report = job.report
    refused = sorted(report.refused, key=lambda r: r.line)
    return JobOut(
        id=job.id, state=job.state.value, rows=job.rows, validated=job.validated,
        imported=report.imported, unchanged=report.unchanged, error=job.error,
        refused=[RefusalOut(line=r.line, reason=r.reason) for r in refused],
    )  # fmt: skip


def _media(content_type: str | None) -> str:
    media = (content_type or CSV).split(";")[0].strip().lower()
    if media in JSONL_TYPES:
        return JSONL
    if media in (CSV, "text/plain", ""):
        return CSV
    raise InvalidInput(f"the body must be {CSV} or {JSONL}, not {media}", field="body")


@router.post(
    "/devices:import",
    response_model=ImportOut,
    openapi_extra=IMPORT_BODY,
    responses={
        202: {
            "model": JobOut,
            "description": "a job: read its progress at the Location given",
        },
        **answers(429),
    },
)
async def import_devices(
    request: Request,
    rt: RuntimeDep,
    cred: CredentialDep,
    line_offset: Annotated[
        int, Query(ge=0, description="added to reported line numbers (a file sent in parts)")
    ] = 0,
    prefer: Annotated[str | None, Header(description="`respond-async`: a job at any size")] = None,
) -> Response:
    """Check every row of a CSV (`serial,model,name,tags`, optionally `protocol,address,pin`)
    or of JSON lines (one object a line, the same keys), then add the good ones to the
    caller's account: simulated devices, Shellies adopted over MQTT (`protocol`
    `shelly-gen1`/`shelly-gen2`, `address` the MQTT id) and polled smart-MAIC meters
    (`smart-maic`, `address` the URL, `pin`). Rows whose device the account already has are
    `unchanged`; bad rows are listed by line number with the reason.

    Up to 1,000 rows the answer is the report (200); a larger import, or one sent with
    `Prefer: respond-async`, answers 202 with a job whose progress
    `GET /api/v1/imports/{id}` reads (the `Location` header)."""
    media = _media(request.headers.get("content-type"))
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text", field="body") from None
    rows = onboarding.parse(text, media)
    jobs = Jobs.of(rt)
    wants_job = "respond-async" in (prefer or "").lower()
    if len(rows) <= SYNC_ROWS and not wants_job:
        report = await jobs.run_now(rt, cred.account_id, rows, line_offset)
        return JSONResponse(_report(report).model_dump())
    job = await jobs.start(rt, cred.account_id, rows, line_offset)
    headers = {"Location": f"/api/v1/imports/{job.id}"}
    if wants_job:
        headers["Preference-Applied"] = "respond-async"
    return JSONResponse(job_out(job).model_dump(), status_code=202, headers=headers)


@router.get("/imports/{job_id}", response_model=JobOut, responses=answers(404))
async def get_import(rt: RuntimeDep, cred: CredentialDep, job_id: str) -> JobOut:
    """An import job's progress: its state, rows checked, devices added, rows refused
    (on whichever API worker the request reaches)."""
    return job_out(await Jobs.of(rt).find(rt, cred.account_id, job_id))
