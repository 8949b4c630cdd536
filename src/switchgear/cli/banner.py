"""What `switchgear demo` prints: the accounts, where the credentials are, curl examples."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from switchgear.core.model import Json
from switchgear.dialects import dialects

Example = Callable[[Mapping[str, Json]], str | None]


def _native(c: Mapping[str, Json]) -> str | None:
    return (
        f"curl -s {c['base_url']}/api/v1/devices -H 'Authorization: Bearer {c['account']['token']}'"
    )


def examples() -> list[tuple[str, Example]]:
    """One working curl example per API: the native one, then each dialect's."""
    return [("native", _native), *((d.name, d.example) for d in dialects())]


def banner(console: Console, content: Mapping[str, Json], path: str) -> None:
    table = Table(title="switchgear demo accounts")
    table.add_column("account")
    table.add_column("email")
    table.add_column("password")
    for key in ("account", "other_account"):
        a = content[key]
        table.add_row(key, a["email"], a["password"])
    console.print(table)
    console.print(f"Credentials (both accounts, every API): {path}", highlight=False)
    for name, example in examples():
        line = example(content)
        if line:
            # the example is shown verbatim: `[true]` in a JSON body is not Rich markup
            console.print(
                f"\n[bold]{name}[/bold]\n  {escape(line)}", highlight=False, soft_wrap=True
            )
