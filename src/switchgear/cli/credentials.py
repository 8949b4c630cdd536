"""`switchgear credentials ...`: credentials of the vendor faces (e.g. smart-plug clients)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from switchgear.cli.client import (
    DEFAULT_CREDENTIALS,
    AccountOpt,
    CredsOpt,
    JsonOpt,
    UrlOpt,
    call,
    resolve,
)
from switchgear.cli.errors import handled
from switchgear.cli.output import console, print_json

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke vendor-API credentials.")


@app.command("create")
def create(
    kind: Annotated[str, typer.Argument(help="e.g. smartplug.client")],
    desc: str = "",
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
    as_json: JsonOpt = False,
) -> None:
    """A new credential; its secret is printed once."""
    with handled():
        target = resolve(url, credentials_file, account)
        made = call(target, "POST", "/api/v1/credentials", {"kind": kind, "desc": desc})
        if as_json:
            print_json(made)
            return
        for key, value in made.items():
            console.print(f"{key}: {value}", highlight=False, soft_wrap=True)


@app.command("list")
def list_credentials(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
    as_json: JsonOpt = False,
) -> None:
    """The account's vendor-API credentials (never their secrets)."""
    with handled():
        params = {"kind": kind} if kind else None
        data = call(resolve(url, credentials_file, account), "GET", "/api/v1/credentials",
                    params=params)  # fmt: skip
        if as_json:
            print_json(data)
            return
        t = Table()
        t.add_column("id", no_wrap=True)
        t.add_column("kind")
        t.add_column("desc")
        t.add_column("created")
        t.add_column("expires")
        t.add_column("revoked")
        for c in data:
            t.add_row(c["id"], c["kind"], c["desc"], c["created_at"], c["expires_at"] or "-",
                      "yes" if c["revoked"] else "no")  # fmt: skip
        console.print(t)


@app.command("revoke")
def revoke(
    credential_id: str,
    url: UrlOpt = None,
    credentials_file: CredsOpt = DEFAULT_CREDENTIALS,
    account: AccountOpt = "account",
) -> None:
    """Revoke a credential: it is refused from now on."""
    with handled():
        path = f"/api/v1/credentials/{credential_id}"
        call(resolve(url, credentials_file, account), "DELETE", path)
        console.print(f"credential {credential_id} revoked", highlight=False)
