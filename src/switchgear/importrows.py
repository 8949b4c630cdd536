"""The rows of a bulk import: a CSV or JSON lines body read into fields, each with its line."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass

from switchgear import jsontext
from switchgear.storedtext import NUL

REQUIRED = ("serial", "model", "name", "tags")  # a CSV header names these (CONTRACTS §11)
EXTRA = ("protocol", "address", "pin")  # and, for real devices, any of these
COLUMNS = REQUIRED + EXTRA
HEADER_HELP = "serial,model,name,tags (then, for real devices, protocol,address,pin)"

LINE_END = re.compile(r"\r\n|\r|\n")
CSV = "text/csv"
JSONL = "application/x-ndjson"
# what a client may call JSON lines (the CLI sends JSONL for a .jsonl or .ndjson file)
JSONL_TYPES = frozenset(
    {JSONL, "application/jsonl", "application/json-lines", "application/x-jsonlines"}
)


@dataclass(frozen=True)
class Fields:
    """One row's cells, stripped; `tags` split (`;` in CSV, a list or `;` string in JSON)."""

    serial: str
    model: str = ""
    name: str = ""
    tags: tuple[str, ...] = ()
    protocol: str = ""
    address: str = ""
    pin: str = ""


Parsed = tuple[int, Fields | str]  # (line, the fields or why the line is refused)


class BadHeader(ValueError):
    """The CSV's first line is not a header of known columns."""


def split_tags(cell: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in cell.split(";") if t.strip())


def split_lines(text: str) -> list[str]:
    """The text's lines, ended by \\n, \\r\\n or \\r only: str.splitlines would also end one
    at U+2028, a form feed or NEL, which a name may hold."""
    body = text.removesuffix("\n").removesuffix("\r")
    return LINE_END.split(body) if body else []


def parse(text: str, content_type: str) -> list[Parsed]:
    """The data rows of a body of this media type, each with its line number in the file."""
    if content_type in JSONL_TYPES:
        return parse_jsonl(text)
    return parse_csv(text)


def parse_csv(text: str) -> list[Parsed]:
    """CSV rows; line 1 is the header (BadHeader unless it names serial,model,name,tags
    and, optionally, protocol,address,pin, in any order). Blank lines are skipped."""
    lines = split_lines(text)
    _, first = next(_records(lines[:1]), (1, []))
    header = [c.strip().lower() for c in first] if isinstance(first, list) else []
    if (
        not set(REQUIRED) <= set(header)
        or not set(header) <= set(COLUMNS)
        or len(set(header)) != len(header)
    ):
        raise BadHeader(f"the first line must be the header {HEADER_HELP}")
    out: list[Parsed] = []
    for line, cells in _records(lines[1:]):
        number = line + 1  # (the header is line 1)
        if isinstance(cells, str):
            out.append((number, cells))
            continue
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            expected = f"expected {len(header)} fields ({','.join(header)})"
            out.append((number, f"{expected}, found {len(cells)}"))
            continue
        row = {k: c.strip() for k, c in zip(header, cells, strict=True)}
        tags = split_tags(row.pop("tags"))
        out.append((number, _fields(row, tags)))
    return out


def _records(lines: list[str]) -> Iterator[tuple[int, list[str] | str]]:
    """Each record's first line (1: the list's first) and its cells, or why the reader could
    not read it (a field past its limit). A quoted field may span lines: the reader's
    count of lines read, not of records, says where the next record starts."""
    reader = csv.reader(line + "\n" for line in lines)  # ended: a quoted field keeps its breaks
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # the reader goes on at the next line
            yield start, f"not readable as CSV: {err}"
            continue
        yield start, cells


def parse_jsonl(text: str) -> list[Parsed]:
    """One JSON object a line (line 1 is the first object; blank lines are skipped)."""
    out: list[Parsed] = []
    for number, line in enumerate(split_lines(text), start=1):
        if line.strip():
            out.append((number, _object(line)))
    return out


def _object(line: str) -> Fields | str:
    try:
        obj = jsontext.loads(line)  # as every JSON body: no NaN, nothing nested past 64 levels
    except ValueError:
        return "not a JSON object (each line holds one)"
    if not isinstance(obj, dict):
        return "not a JSON object (each line holds one)"
    unknown = sorted(k for k in obj if k not in COLUMNS)
    if unknown:
        return f"{unknown[0]}: not a known key ({', '.join(COLUMNS)})"
    if "serial" not in obj and "address" not in obj:
        return "serial: missing"
    cells: dict[str, str] = {}
    for key in COLUMNS:
        value = obj.get(key, "")
        if key == "tags" and isinstance(value, list):
            if not all(isinstance(t, str) for t in value):
                return "tags: a list of strings, or one string separated by ;"
            continue
        if value is None:
            value = ""
        if not isinstance(value, str):
            return f"{key}: must be a string"
        cells[key] = value.strip()
    raw = obj.get("tags") or ""
    tags = tuple(t.strip() for t in raw if t.strip()) if isinstance(raw, list) else split_tags(raw)
    cells.pop("tags", None)
    return _fields(cells, tags)


def _fields(cells: dict[str, str], tags: tuple[str, ...]) -> Fields | str:
    """The row's fields, or why not: a NUL character (PostgreSQL keeps none in text)."""
    for key in COLUMNS:
        if NUL in cells.get(key, "") or (key == "tags" and any(NUL in t for t in tags)):
            return f"{key}: holds a NUL character (U+0000)"
    return Fields(tags=tags, **cells)
