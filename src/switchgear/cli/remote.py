"""The options every client command shares, declared once: --url, --credentials-file, --account."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from switchgear.cli.client import DEFAULT_CREDENTIALS, AccountOpt, CredsOpt, resolve
from switchgear.cli.errors import handled

R = TypeVar("R")

URL_HELP = "Server URL (default: from the credentials file, else http://127.0.0.1:8080)."


def remote(func: Callable[..., R]) -> Callable[..., R]:
    """A command that talks to a running server: it declares `target: Target` and gets the
    shared options added to its own, resolved (token, URL) before its body runs; any
    CliError in it ends as one `error:` line on stderr and exit status 1."""
    return remote_at("--url")(func)


def remote_at(url_flag: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """`remote`, with the server's URL taken from `url_flag` (where --url means another)."""

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "target"]
        url_opt = Annotated[str | None, typer.Option(url_flag, help=URL_HELP)]
        kw = inspect.Parameter.KEYWORD_ONLY
        shared = [
            inspect.Parameter("server_url", kw, default=None, annotation=url_opt),
            inspect.Parameter(
                "credentials_file", kw, default=DEFAULT_CREDENTIALS, annotation=CredsOpt
            ),
            inspect.Parameter("account", kw, default="account", annotation=AccountOpt),
        ]

        @functools.wraps(func)
        def command(
            *args: Any,
            server_url: str | None = None,
            credentials_file: str = DEFAULT_CREDENTIALS,
            account: str = "account",
            **kwargs: Any,
        ) -> R:
            with handled():
                return func(*args, target=resolve(server_url, credentials_file, account), **kwargs)

        command.__signature__ = sig.replace(parameters=[*own, *shared])  # type: ignore[attr-defined]
        return command

    return decorate
