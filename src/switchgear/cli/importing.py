"""`switchgear devices import FILE`: a CSV or JSON lines file sent in parts, each an import
job on the server whose progress the bar shows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from switchgear.cli.client import CliError, Target, call, session
from switchgear.cli.output import errors
from switchgear.importrows import split_lines

PART_ROWS = 5_000  # rows per request
PART_BYTES = 512 * 1024  # and at most this much of them (the server takes 1 MiB a body)
# a part grows past PART_BYTES to end a quoted field at most to this (a field longer than
# the CSV reader's 128 KiB is refused whatever part it is in: an unclosed quote, say)
MOST_PART_BYTES = 768 * 1024
POLL_S = 0.2  # between two reads of a job's progress
JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_TYPE, JSONL_TYPE = "text/csv", "application/x-ndjson"


def parts(path: Path) -> tuple[str | None, list[tuple[int, list[str]]]]:
    """The CSV header line (None for JSON lines) and the data lines in parts, each with the
    number of data lines before it (the server adds it to the line numbers it reports)."""
    try:
        lines = split_lines(path.read_text(encoding="utf-8-sig"))  # as the server splits them
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"cannot read {path}: {err}") from None
    if path.suffix.lower() in JSONL_SUFFIXES:
        return None, list(_split(lines, quoting=False))
    if not lines:
        raise CliError(f"{path} is empty: the first line must be serial,model,name,tags")
    return lines[0], list(_split(lines[1:], quoting=True))


def _split(lines: list[str], quoting: bool) -> Iterator[tuple[int, list[str]]]:
    """Parts of at most PART_ROWS lines and about PART_BYTES; with `quoting` (CSV) not
    inside a quoted field that spans lines (an odd count of `"` so far opens one) unless
    the part would pass MOST_PART_BYTES."""
    start, size, quoted = 0, 0, False
    for i, line in enumerate(lines):
        size += len(line) + 1
        full = i - start >= PART_ROWS or size > PART_BYTES
        if i > start and ((full and not quoted) or size > MOST_PART_BYTES):
            yield start, lines[start:i]
            start, size, quoted = i, len(line) + 1, False  # as the server reads the part
        quoted ^= quoting and line.count('"') % 2 == 1
    if start < len(lines) or not lines:
        yield start, lines[start:]


def send(target: Target, path: Path, show_progress: bool) -> dict[str, Any]:
    """Import the file part by part, each as a job whose progress is read back; the summed
    report. One kept-alive connection carries every request (so a job is read from the
    server process that runs it)."""
    header, chunks = parts(path)
    kind = CSV_TYPE if header is not None else JSONL_TYPE
    total = sum(len(c) for _, c in chunks)
    out: dict[str, Any] = {"rows": 0, "imported": 0, "unchanged": 0, "refused": []}
    with session(target) as client, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=errors, disable=not show_progress, transient=False,
    ) as bar:  # fmt: skip
        checked = bar.add_task("checked ", total=total)
        imported = bar.add_task("imported", total=total)
        done = 0
        for before, chunk in chunks:
            body = "\n".join([*([header] if header is not None else []), *chunk]) + "\n"
            answer = call(
                target, "POST", "/api/v1/devices:import", params={"line_offset": before},
                csv_body=body, content_type=kind, extra_headers={"Prefer": "respond-async"},
                client=client,
            )  # fmt: skip

            def show(job: dict[str, Any], base: int = done) -> None:
                settled = job["imported"] + job["unchanged"] + len(job["refused"])
                bar.update(checked, completed=base + job.get("validated", job["rows"]))
                bar.update(imported, completed=base + min(settled, job["rows"]))

            report = _follow(target, client, answer, show)
            for key in ("rows", "imported", "unchanged"):
                out[key] += report[key]
            out["refused"] += report["refused"]
            done += len(chunk)
            bar.update(checked, completed=done)
            bar.update(imported, completed=done)
    return out


def _follow(target: Target, client: httpx.Client, answer: dict[str, Any], show: Any) -> Any:
    """The final report of an import answered as a job (read until it ends), or the report
    itself when the server answered in the request."""
    if "state" not in answer:  # a report (a small import, or a server without jobs)
        return answer
    job = answer
    while job["state"] not in ("done", "failed"):
        show(job)
        time.sleep(POLL_S)
        job = call(target, "GET", f"/api/v1/imports/{job['id']}", client=client)
    show(job)
    if job["state"] == "failed":
        raise CliError(f"the import failed: {job['error']}")
    return job
