"""Bulk onboarding: rows of devices (CSV or JSON lines) checked one by one, added in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from switchgear import importkinds as kinds
from switchgear import importrows
from switchgear.core.model import MAX_TAG, Device
from switchgear.errors import Conflict, DeviceNotFound, InvalidInput, MetersCapped
from switchgear.registration import admit_rows
from switchgear.runtime import Runtime

BATCH = 5_000  # devices per store transaction (and per progress step)
MAX_NAME = 200
MAX_TAGS = 20
SHOWN = 12  # characters of a refused tag the report quotes

SERIAL_REFUSED = kinds.SERIAL_REFUSED
ADDRESS_REFUSED = kinds.ADDRESS_REFUSED
RULES = kinds.RULES  # per simulated model: its serials and its twin's first attributes


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


def parse(text: str, content_type: str = importrows.CSV) -> list[importrows.Parsed]:
    """The data rows with their line numbers; InvalidInput for a CSV whose header is not
    one of known columns (serial,model,name,tags and optionally protocol,address,pin)."""
    try:
        return importrows.parse(text, content_type)
    except importrows.BadHeader as err:
        raise InvalidInput(str(err), field="body") from None


CHECK_STEP = 1_000  # rows checked between two turns of the event loop (and progress steps)


async def check(
    rt: Runtime,
    account_id: int,
    rows: list[importrows.Parsed],
    line_offset: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Plan:
    """Validate every row; nothing is added. `line_offset` shifts reported line numbers
    (a file sent in parts); `progress` is told how many rows are checked so far."""
    plan = Plan(Report())
    seen: dict[str, int] = {}
    ctx = kinds.Context.of(rt, account_id)
    now = rt.clock.now()
    # meters that sit on a gateway are checked after the other rows, so a file may list
    # a meter before its gateway
    ordered = [r for r in rows if not kinds.needs_gateway(r[1])]
    ordered += [r for r in rows if kinds.needs_gateway(r[1])]
    for i, (number, row) in enumerate(ordered, start=1):
        line = number + line_offset
        plan.report.rows += 1
        device = await _device(rt, ctx, account_id, row, now, seen, line, plan.report)
        if isinstance(device, str):
            plan.report.refused.append(Refusal(line, device))
        elif device is not None:
            plan.new.append((line, device))
        if i % CHECK_STEP == 0:
            if progress is not None:
                progress(i)
            await asyncio.sleep(0)  # other requests go on while a large file is checked
    plan.report.refused.sort(key=lambda r: r.line)
    if progress is not None:
        progress(len(rows))
    return plan


async def _device(
    rt: Runtime, ctx: kinds.Context, account_id: int, row: importrows.Fields | str,
    now: float, seen: dict[str, int], line: int, report: Report,
) -> Device | str | None:  # fmt: skip
    """The row's new device, None when the account has it already, or why it is refused."""
    if isinstance(row, str):
        return row
    kind = kinds.KINDS.get(row.protocol or kinds.SIMULATED)
    if kind is None:
        return f"protocol: unknown protocol {row.protocol!r} ({', '.join(kinds.KINDS)})"
    made = kind.build(row, account_id, now)
    if isinstance(made, str):
        return made
    if len(made.name) > MAX_NAME:
        return f"name: longer than {MAX_NAME} characters"
    if len(row.tags) > MAX_TAGS:
        return f"tags: more than {MAX_TAGS}"
    long = next((t for t in row.tags if len(t) > MAX_TAG), None)
    if long is not None:  # an FFR group selects by tag and names none longer
        return f"tags: {long[:SHOWN] + '…'!r} is longer than {MAX_TAG} characters"
    if made.serial in seen:
        return f"serial: repeats line {seen[made.serial]}"
    seen[made.serial] = line
    own = _own(rt, account_id, made.serial)
    if own is not None and own.model == made.model:
        report.unchanged += 1  # imported before: nothing to do
        return None
    if own is not None or rt.engine.serial_taken(made.serial):
        return SERIAL_REFUSED
    placed = kinds.place(ctx, made)  # a meter on a Push3 gateway: on which one
    if isinstance(placed, str):
        return placed
    made = placed
    refused = await kind.admit(ctx, made)
    if refused is not None:
        return refused
    ctx.took(made)
    return made


def _own(rt: Runtime, account_id: int, serial: str) -> Device | None:
    try:
        return rt.engine.device_by_serial(account_id, serial)
    except DeviceNotFound:  # not one of the account's
        return None


Progress = Callable[[int, int], None]  # (rows handled, rows in all)


async def run(rt: Runtime, account_id: int, plan: Plan, progress: Progress | None = None) -> Report:
    """Add the plan's devices in batches of BATCH (after charging the account's
    registration allowance); a serial taken meanwhile is refused like any other, and a real
    device's MQTT id adopted meanwhile as the check refuses one, and a meter past the
    account's cap (another worker's registrations meanwhile) as the check does."""
    report = plan.report
    most = rt.settings.meter_max_per_account
    await admit_rows(rt, account_id, len(plan.new) + _probes(report))
    total = len(plan.new)
    for start in range(0, total, BATCH):
        part = plan.new[start : start + BATCH]
        try:
            report.imported += len(await rt.add_devices([d for _, d in part], most))
        except Conflict:  # a registration raced this batch: one by one, to find it
            for line, device in part:
                try:
                    await rt.add_devices([device], most)
                    report.imported += 1
                except MetersCapped:
                    report.refused.append(Refusal(line, kinds.meters_refused(most)))
                except Conflict as err:  # a real device's MQTT id adopted meanwhile: as
                    taken = err.field == "mqtt_id" and not device.simulated  # the check says
                    why = ADDRESS_REFUSED if taken else SERIAL_REFUSED
                    report.refused.append(Refusal(line, why))
        if progress is not None:
            progress(start + len(part), total)
    report.refused.sort(key=lambda r: r.line)
    return report


def _probes(report: Report) -> int:
    """Refused rows count against the allowance as failed registrations do."""
    return len(report.refused)
