"""`switchgear users add`: create an account directly in a database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.auth.service import Auth, secret_key
from switchgear.cli.errors import handled
from switchgear.cli.output import console
from switchgear.core.clock import SystemClock
from switchgear.core.model import Account
from switchgear.settings import Settings
from switchgear.storage import open_store

app = typer.Typer(no_args_is_help=True, help="Accounts (works on the database, no server needed).")

TOKEN_TTL_S = 30 * 86_400.0


async def _add(
    url: str, email: str, name: str, password: str, token: bool, operator: bool = False
) -> tuple[Account, str | None]:
    store = open_store(url)
    await store.open()
    auth = Auth(store, SystemClock(), await secret_key(store, Settings().secret_key))
    try:
        await auth.load()
        account = await auth.create_account(email, name, password, operator=operator)
        plain = None
        if token:
            _, plain = await auth.issue(account.id, KIND_NATIVE, TOKEN_TTL_S, desc="users add")
        await auth.announce()  # a running server picks the account and token up
        return account, plain
    finally:
        auth.close()
        await store.close()


@app.command("add")
def add(
    email: str,
    name: Annotated[str, typer.Option(help="Display name (default: the email).")] = "",
    password: Annotated[str | None, typer.Option(help="Password (prompted if missing).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Default: $SWITCHGEAR_DATABASE_URL or sqlite:///./switchgear.db"),
    ] = None,
    token: Annotated[bool, typer.Option("--token", help="Also create a native API token.")] = False,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help="Make it an operator (may move the shared clock); the first account is one.",
        ),
    ] = False,
) -> None:
    """Create an account (the password is stored as an argon2id hash).

    A running server sees it, and its token, within seconds: no restart needed."""
    with handled():
        url = database_url or Settings().database_url
        pw = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
        account, plain = asyncio.run(_add(url, email, name or email, pw, token, operator))
        console.print(f"account {account.id} created for {email} ({account.role})", highlight=False)
        if plain:
            console.print(plain, highlight=False, soft_wrap=True)
