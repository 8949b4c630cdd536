"""`switchgear tokens ...`: native API tokens on a server."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from switchgear.cli.client import CliError, JsonOpt, Target, call, finite
from switchgear.cli.output import console, print_json, table
from switchgear.cli.remote import remote

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke native API tokens.")


@app.command("create")
@remote
def create(
    target: Target,
    email: Annotated[
        str | None, typer.Option(help="Sign in with this email (else use the current token).")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password for --email (prompted if missing).")
    ] = None,
    expires_in: Annotated[
        float | None,
        typer.Option(help="Seconds until it expires (default 30 days).", parser=finite),
    ] = None,
    desc: str = "",
    as_json: JsonOpt = False,
) -> None:
    """A new token, printed once."""
    body: dict[str, Any] = {"desc": desc}
    if expires_in is not None:
        body["expires_in"] = expires_in
    if email:
        body["email"] = email
        body["password"] = password or typer.prompt("password", hide_input=True)
    elif not target.token:
        raise CliError("give --email, or a token via SWITCHGEAR_TOKEN or --credentials-file")
    tok = call(target, "POST", "/api/v1/tokens", body, auth=not email)
    if as_json:
        print_json(tok)
    else:
        console.print(f"token {tok['id']} (expires {tok['expires_at']}):", highlight=False)
        console.print(tok["token"], highlight=False, soft_wrap=True)


@app.command("list")
@remote
def list_tokens(
    target: Target,
    as_json: JsonOpt = False,
) -> None:
    """The account's tokens (never their secrets)."""
    data = call(target, "GET", "/api/v1/tokens")
    if as_json:
        print_json(data)
        return
    names = ("id", "desc", "created", "expires", "revoked")
    rows = [
        (
            t["id"],
            t["desc"],
            t["created_at"],
            t["expires_at"] or "-",
            "yes" if t["revoked"] else "no",
        )
        for t in data
    ]
    console.print(table(names, rows, {"id"}))


@app.command("revoke")
@remote
def revoke(
    target: Target,
    token_id: str,
) -> None:
    """Revoke a token: it is refused from now on."""
    call(target, "DELETE", f"/api/v1/tokens/{token_id}")
    console.print(f"token {token_id} revoked", highlight=False)
