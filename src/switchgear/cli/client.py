"""The CLI's HTTP client for a running server: base URL and token resolution, problem errors."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

DEFAULT_CREDENTIALS = "./switchgear-demo.json"
DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """Something to tell the user on stderr before exiting with status 1."""


UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help="Server URL (default: from the credentials file, else http://127.0.0.1:8080)."
    ),
]
CredsOpt = Annotated[
    str,
    typer.Option(
        "--credentials-file", help="Demo credentials file to take the URL and token from."
    ),
]
AccountOpt = Annotated[
    str, typer.Option("--account", help="Which account of the credentials file: account or other.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]


def finite(value: str | float) -> float:
    """A number option's value: any number but nan and ±inf, which no request can carry."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class Target:
    """Where to send requests and with which token."""

    url: str
    token: str | None


def resolve(url: str | None, credentials_file: str, account: str = "account") -> Target:
    """$SWITCHGEAR_TOKEN wins; otherwise the credentials file's token (and URL)."""
    creds: dict[str, Any] = {}
    path = Path(credentials_file)
    if path.exists():
        try:
            creds = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CliError(f"cannot read {path}: {err}") from None
    key = "other_account" if account in ("other", "other_account") else "account"
    token = os.environ.get("SWITCHGEAR_TOKEN") or (creds.get(key) or {}).get("token")
    return Target(url or creds.get("base_url") or DEFAULT_URL, token)


def session(target: Target) -> httpx.Client:
    """A client for several requests to the server over one kept-alive connection."""
    return httpx.Client(base_url=target.url, timeout=30)


def call(
    target: Target,
    method: str,
    path: str,
    json_body: Any = None,
    params: dict[str, Any] | None = None,
    auth: bool = True,
    csv_body: str | None = None,
    content_type: str = "text/csv",
    extra_headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
) -> Any:
    """One request (a JSON body, or `csv_body` as text/csv or `content_type`); a problem
    document or a refused connection becomes a CliError. A `client` given keeps its
    connection (the requests of one import reach the same server process)."""
    headers = {"Authorization": f"Bearer {target.token}"} if auth and target.token else {}
    headers.update(extra_headers or {})
    content = None
    if csv_body is not None:
        headers["Content-Type"] = content_type
        content = csv_body.encode()
    try:
        with contextlib.nullcontext(client) if client else session(target) as c:
            r = c.request(
                method, path, json=json_body, content=content, params=params, headers=headers
            )
    except httpx.ConnectError:
        raise CliError(f"no switchgear server answers at {target.url}") from None
    except httpx.HTTPError as err:
        raise CliError(f"request to {target.url} failed: {err}") from None
    if r.status_code >= 400:
        try:
            problem = r.json()
            detail = problem.get("detail") or problem.get("title") or r.reason_phrase
        except ValueError:
            detail = r.text or r.reason_phrase
        raise CliError(f"{detail} (HTTP {r.status_code})")
    return r.json() if r.content else None
