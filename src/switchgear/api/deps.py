"""FastAPI dependencies as Annotated aliases: the runtime and the caller's credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.responses import Response

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.accounts import Credential
from switchgear.runtime import Runtime

# Declared for the OpenAPI security scheme; the token itself is read in get_credential.
bearer_scheme = HTTPBearer(auto_error=False, description="A native API token")


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    header = request.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


async def get_credential(request: Request) -> Credential:
    """The caller's native credential, checked in memory (401 problem otherwise)."""
    rt: Runtime = request.app.state.runtime
    return rt.auth.authenticate(bearer_token(request), KIND_NATIVE)


CredentialDep = Annotated[Credential, Depends(get_credential)]


async def require_operator(request: Request) -> Credential:
    """The caller's credential if its account is the operator (403 problem otherwise)."""
    cred = await get_credential(request)
    rt: Runtime = request.app.state.runtime
    rt.auth.require_operator(cred)
    return cred


OperatorDep = Annotated[Credential, Depends(require_operator)]


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialise once with pydantic-core; FastAPI does not validate a returned Response."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")
