"""Bulk onboarding: a CSV of simulated devices checked row by row, then added in batches."""

from __future__ import annotations

import csv
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from switchgear.core.catalog import CATALOG
from switchgear.core.model import Device
from switchgear.errors import Conflict, DeviceNotFound, InvalidInput
from switchgear.registration import admit_rows
from switchgear.runtime import Runtime

HEADER = ("serial", "model", "name", "tags")
BATCH = 5_000  # devices per store transaction (and per progress step)
MAX_NAME = 200
MAX_TAGS = 20

# One answer for a malformed serial and for one already registered to anyone else, as on
# every face: the report never tells whose a serial is.
SERIAL_REFUSED = "serial: not a serial that can be added for this model"


@dataclass(frozen=True)
class SerialRule:
    """What a model's serials look like, and the attributes its twin starts with."""

    pattern: re.Pattern[str]
    attrs: Callable[[], Mapping[str, str]] = dict


def _pin() -> Mapping[str, str]:
    return {"devpass": f"{secrets.randbelow(1_000_000):06d}"}


GENERIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$")
# per model: the serial its own face addresses it by (models absent here: real devices only)
RULES: dict[str, SerialRule] = {
    "SHPLG-1": SerialRule(GENERIC),
    "LG-MULTI-4": SerialRule(GENERIC),
    "power-controller-v10": SerialRule(re.compile(r"^PC-[A-Z0-9]{6,20}-\d{3}$")),
    "OMNIMETER-V4": SerialRule(
        re.compile(r"^[0-9A-Za-z]{1,12}$"), lambda: {"meter_password": "00000000"}
    ),
    "PUSH3": SerialRule(re.compile(r"^[0-9A-Za-z]{1,12}$")),
    "D101": SerialRule(re.compile(r"^[0-9]{10}$"), lambda: {"version": "standard", **_pin()}),
    "D103": SerialRule(re.compile(r"^[0-9]{10}$"), lambda: {"version": "extended", **_pin()}),
}


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str


@dataclass
class Report:
    """What an import did: rows read, devices added, rows already there, rows refused."""

    rows: int = 0
    imported: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class Plan:
    """The checked rows: devices to add (with their lines) and the report so far."""

    report: Report
    new: list[tuple[int, Device]] = field(default_factory=list)


def parse(text: str) -> list[tuple[int, list[str]]]:
    """The data rows with their line numbers (the header is line 1); InvalidInput for a
    file whose header is not `serial,model,name,tags`."""
    lines = text.splitlines()
    if not lines or tuple(c.strip().lower() for c in next(csv.reader(lines[:1]))) != HEADER:
        raise InvalidInput("the first line must be the header serial,model,name,tags", field="body")
    out = []
    for number, cells in enumerate(csv.reader(lines[1:]), start=2):
        if cells and any(c.strip() for c in cells):  # blank lines are skipped
            out.append((number, cells))
    return out


def check(rt: Runtime, account_id: int, text: str, line_offset: int = 0) -> Plan:
    """Validate every row; nothing is added. `line_offset` shifts reported line numbers
    (a file sent in parts)."""
    plan = Plan(Report())
    seen: dict[str, int] = {}
    now = rt.clock.now()
    engine = rt.engine
    for number, cells in parse(text):
        line = number + line_offset
        plan.report.rows += 1
        reason = _reason(cells)
        serial = cells[0].strip() if cells else ""
        model = cells[1].strip() if len(cells) > 1 else ""
        if reason is None and serial in seen:
            reason = f"serial: repeats line {seen[serial]}"
        if reason is None:
            seen[serial] = line
            own = _own(rt, account_id, serial)
            if own is not None and own.model == model:
                plan.report.unchanged += 1  # imported before: nothing to do
                continue
            if own is not None or engine.serial_taken(serial):
                reason = SERIAL_REFUSED
        if reason is not None:
            plan.report.refused.append(Refusal(line, reason))
            continue
        name, tags = cells[2].strip(), _tags(cells[3])
        device = Device(0, account_id, serial, model, name or serial, now, tags,
                        dict(RULES[model].attrs()))  # fmt: skip
        plan.new.append((line, device))
    return plan


def _own(rt: Runtime, account_id: int, serial: str) -> Device | None:
    try:
        return rt.engine.device_by_serial(account_id, serial)
    except DeviceNotFound:  # not one of the account's
        return None


def _tags(cell: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in cell.split(";") if t.strip())


def _reason(cells: list[str]) -> str | None:
    """Why a row's own fields are refused (None: well-formed)."""
    if len(cells) != len(HEADER):
        return f"expected 4 fields (serial,model,name,tags), found {len(cells)}"
    serial, model, name, tags = (c.strip() for c in cells)
    if model not in CATALOG:
        return f"model: unknown model {model!r}"
    rule = RULES.get(model)
    if rule is None:
        return f"model: {model} is a real device only (adopt it instead)"
    if not rule.pattern.match(serial):
        return SERIAL_REFUSED
    if len(name) > MAX_NAME:
        return f"name: longer than {MAX_NAME} characters"
    if len(_tags(tags)) > MAX_TAGS:
        return f"tags: more than {MAX_TAGS}"
    return None


Progress = Callable[[int, int], None]  # (rows handled, rows in all)


async def run(rt: Runtime, account_id: int, plan: Plan, progress: Progress | None = None) -> Report:
    """Add the plan's devices in batches of BATCH (after charging the account's
    registration allowance); a serial taken meanwhile is refused like any other."""
    report = plan.report
    await admit_rows(rt, account_id, len(plan.new) + _probes(report))
    total = len(plan.new)
    for start in range(0, total, BATCH):
        part = plan.new[start : start + BATCH]
        try:
            report.imported += len(await rt.add_devices([d for _, d in part]))
        except Conflict:  # a registration raced this batch: one by one, to find it
            for line, device in part:
                try:
                    await rt.add_devices([device])
                    report.imported += 1
                except Conflict:
                    report.refused.append(Refusal(line, SERIAL_REFUSED))
        if progress is not None:
            progress(start + len(part), total)
    report.refused.sort(key=lambda r: r.line)
    return report


def _probes(report: Report) -> int:
    """Refused rows count against the allowance as failed registrations do."""
    return len(report.refused)
