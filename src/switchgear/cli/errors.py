"""Turn CliError into `error: ...` on stderr and exit status 1, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from switchgear.cli.client import CliError
from switchgear.cli.output import errors
from switchgear.errors import SwitchgearError


@contextmanager
def handled() -> Iterator[None]:
    try:
        yield
    except (CliError, SwitchgearError) as err:
        errors.print(f"error: {err}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
