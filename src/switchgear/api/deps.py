"""FastAPI dependencies as Annotated aliases: the runtime and the caller's credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.core.accounts import Credential
from switchgear.runtime import Runtime

_bearer = HTTPBearer(
    auto_error=False, description="A native API token (`switchgear tokens create`)"
)


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_credential(
    rt: RuntimeDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Credential:
    token = creds.credentials if creds is not None else None
    return rt.auth.authenticate(token, KIND_NATIVE)


CredentialDep = Annotated[Credential, Depends(get_credential)]
