"""The OpenAPI document: the problem answers each operation really gives, and no others."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from switchgear.api.problems import PROBLEM

REF = "#/components/schemas/Problem"

DESCRIBE = {
    400: "The request is malformed or a value is out of range",
    401: "No valid token (missing, unknown, expired or revoked)",
    403: "The token's account may not do this",
    404: "No such resource in the caller's account",
    409: "The request conflicts with the server's state",
    413: "The body is larger than the server takes",
    422: "The device refused the command",
    429: "Too many requests; try again after Retry-After seconds",
    503: "The device is offline or unreachable",
    504: "The device did not answer in time",
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error of the native API is answered."""

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str | None = None
    field: str | None = Field(default=None, description="The input the problem is about")
    errors: list[FieldError] | None = Field(default=None, description="Each invalid input")
    retry_after: float | None = Field(default=None, description="Seconds until a retry helps")
    command_id: str | None = Field(default=None, description="The command that failed")


def answers(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these problem statuses, each with the Problem schema;
    `why` words a status this route gives for its own reason (`s422="..."`)."""
    return {
        s: {
            "description": why.get(f"s{s}", DESCRIBE[s]),
            "content": {PROBLEM: {"schema": {"$ref": REF}}},
        }
        for s in statuses
    }


def install(app: FastAPI) -> None:
    """Build the document once: input problems (400, 413) on every operation that takes
    input, 401 on every one that needs a token, and FastAPI's 422 nowhere (validation
    errors are answered 400)."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problems(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path in doc.get("paths", {}).values():
        for op in path.values():
            responses: dict[str, Any] = op.setdefault("responses", {})
            generated = responses.get("422", {}).get("content", {}).get("application/json", {})
            if "HTTPValidationError" in str(generated):
                del responses["422"]
            extra = []
            if op.get("parameters") or "requestBody" in op:
                extra.append(400)
            if "requestBody" in op:
                extra.append(413)
            if op.get("security"):
                extra.append(401)
            for status, answer in answers(*extra).items():
                responses.setdefault(str(status), answer)
            op["responses"] = dict(sorted(responses.items()))
    return doc
