"""`switchgear devices import FILE`: a CSV of simulated devices sent in parts, with progress."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from switchgear.cli.client import CliError, Target, call
from switchgear.cli.output import errors

PART_ROWS = 5_000  # rows per request
PART_BYTES = 512 * 1024  # and at most this much of them (the server takes 1 MiB a body)


def parts(path: Path) -> tuple[str, list[tuple[int, list[str]]]]:
    """The header line and the data lines in parts, each with the number of data lines
    before it (the server adds it to the line numbers it reports)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"cannot read {path}: {err}") from None
    if not lines:
        raise CliError(f"{path} is empty: the first line must be serial,model,name,tags")
    return lines[0], list(_split(lines[1:]))


def _split(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    start, size = 0, 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if i > start and (i - start >= PART_ROWS or size > PART_BYTES):
            yield start, lines[start:i]
            start, size = i, len(line) + 1
    if start < len(lines) or not lines:
        yield start, lines[start:]


def send(target: Target, path: Path, show_progress: bool) -> dict[str, Any]:
    """Import the file part by part; the summed report."""
    header, chunks = parts(path)
    total = sum(len(c) for _, c in chunks)
    out: dict[str, Any] = {"rows": 0, "imported": 0, "unchanged": 0, "refused": []}
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=errors, disable=not show_progress, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("import", total=total)
        for before, chunk in chunks:
            body = "\n".join([header, *chunk]) + "\n"
            report = call(
                target, "POST", "/api/v1/devices:import", params={"line_offset": before},
                csv_body=body,
            )  # fmt: skip
            for key in ("rows", "imported", "unchanged"):
                out[key] += report[key]
            out["refused"] += report["refused"]
            bar.advance(task, len(chunk))
    return out
