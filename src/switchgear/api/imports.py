"""Native bulk onboarding: `POST /api/v1/devices:import` of a CSV of simulated devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from switchgear import onboarding
from switchgear.api.deps import CredentialDep, RuntimeDep
from switchgear.errors import InvalidInput

router = APIRouter(tags=["devices"])

CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "serial,model,name,tags\nSPG-NEW-0001,SHPLG-1,Hall lamp,hall;lights\n",
            }
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


@router.post("/devices:import", response_model=ImportOut, openapi_extra=CSV_BODY)
async def import_devices(
    request: Request,
    rt: RuntimeDep,
    cred: CredentialDep,
    line_offset: Annotated[
        int, Query(ge=0, description="added to reported line numbers (a file sent in parts)")
    ] = 0,
) -> ImportOut:
    """Check every row of a `serial,model,name,tags` CSV, then add the good ones as
    simulated devices of the caller's account. Rows whose device the account already has
    are `unchanged`; bad rows are listed by line number with the reason."""
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text", field="body") from None
    plan = onboarding.check(rt, cred.account_id, text, line_offset)
    report = await onboarding.run(rt, cred.account_id, plan)
    return ImportOut(
        rows=report.rows,
        imported=report.imported,
        unchanged=report.unchanged,
        refused=[RefusalOut(line=r.line, reason=r.reason) for r in report.refused],
    )
