"""`switchgear credentials ...`: credentials of the vendor faces (e.g. smart-plug clients)."""

from __future__ import annotations

from typing import Annotated

import typer

from switchgear.cli.client import JsonOpt, Target, call
from switchgear.cli.output import console, print_json, table
from switchgear.cli.remote import remote

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke vendor-API credentials.")


@app.command("create")
@remote
def create(
    target: Target,
    kind: Annotated[str, typer.Argument(help="e.g. smartplug.client")],
    desc: str = "",
    as_json: JsonOpt = False,
) -> None:
    """A new credential; its secret is printed once."""
    made = call(target, "POST", "/api/v1/credentials", {"kind": kind, "desc": desc})
    if as_json:
        print_json(made)
        return
    for key, value in made.items():
        console.print(f"{key}: {value}", highlight=False, soft_wrap=True)


@app.command("list")
@remote
def list_credentials(
    target: Target,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The account's vendor-API credentials (never their secrets)."""
    params = {"kind": kind} if kind else None
    data = call(target, "GET", "/api/v1/credentials",
                params=params)  # fmt: skip
    if as_json:
        print_json(data)
        return
    names = ("id", "kind", "desc", "created", "expires", "revoked")
    rows = [
        (
            c["id"],
            c["kind"],
            c["desc"],
            c["created_at"],
            c["expires_at"] or "-",
            "yes" if c["revoked"] else "no",
        )
        for c in data
    ]
    console.print(table(names, rows, {"id", "kind"}))


@app.command("revoke")
@remote
def revoke(
    target: Target,
    credential_id: str,
) -> None:
    """Revoke a credential: it is refused from now on."""
    path = f"/api/v1/credentials/{credential_id}"
    call(target, "DELETE", path)
    console.print(f"credential {credential_id} revoked", highlight=False)
