"""Rich rendering of devices, commands and statuses for the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def table(
    names: tuple[str, ...],
    rows: Sequence[Sequence[str]],
    whole: set[str],
    title: str | None = None,
    right: frozenset[str] = frozenset(),
) -> Table:
    """A table that cuts nothing at any terminal width (80 columns included): the columns
    in `whole` (ids, serials, numbers: a number cut to `4500…` is a wrong number) keep
    their full width, the others fold onto more lines."""
    t = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
        title=title,
    )
    for i, name in enumerate(names):
        justify: JustifyMethod = "right" if name in right else "left"
        if name in whole:
            width = max([len(name), *(len(r[i]) for r in rows)])
            t.add_column(name, no_wrap=True, min_width=width, justify=justify)
        else:
            t.add_column(name, overflow="fold", min_width=min(6, len(name)), justify=justify)
    for row in rows:
        t.add_row(*row)
    return t


def devices_table(devices: list[dict[str, Any]]) -> Table:
    """One line per device (more where a name wraps)."""
    rows = [
        (
            str(d["id"]),
            d["serial"],
            d["family"],
            d["model"],
            d["name"],
            "yes" if d["online"] else "no",
            " ".join("on" if c["on"] else "off" for c in d["channels"]) or "-",
            f"{sum(m['power_w'] for m in d['meters']):.1f}",
        )
        for d in devices
    ]
    names = ("id", "serial", "family", "model", "name", "online", "relays", "power W")
    return table(names, rows, {"id", "serial", "power W"}, right=frozenset({"id", "power W"}))


def device_tables(d: dict[str, Any]) -> list[Table]:
    head = [(key, str(d[key])) for key in
            ("serial", "family", "model", "online", "reported_at", "temperature_c")]  # fmt: skip
    out = [table(("field", "value"), head, {"field", "value"}, f"device {d['id']}: {d['name']}")]
    if d["channels"]:
        names = ("ch", "name", "on", "toggle at", "overpower", "power-on", "auto-off s",
                 "auto-on s", "max W")  # fmt: skip
        rows = []
        for c in d["channels"]:
            s = c["settings"]
            rows.append((
                str(c["index"]),
                c["name"],
                "on" if c["on"] else "off",
                c["toggle_at"] or "-",
                str(c["overpower"]),
                s["power_on"],
                str(s["auto_off_s"]),
                str(s["auto_on_s"]),
                str(s["max_power_w"] or "-"),
            ))  # fmt: skip
        numbers = {"ch", "on", "auto-off s", "auto-on s", "max W"}
        out.append(table(names, rows, numbers, "channels"))
    if d["meters"]:
        names = ("pt", "V", "A", "W", "rev W", "PF", "Hz", "Wh", "rev Wh")
        rows = [
            (
                str(r["index"]),
                f"{r['voltage_v']:.1f}",
                f"{r['current_a']:.2f}",
                f"{r['power_w']:.1f}",
                f"{r['reverse_power_w']:.1f}",
                f"{r['power_factor']:.2f}",
                f"{r['frequency_hz']:.2f}",
                f"{r['energy_wh']:.1f}",
                f"{r['reverse_energy_wh']:.1f}",
            )
            for r in d["meters"]
        ]
        out.append(table(names, rows, set(names), "meters", right=frozenset(names) - {"pt"}))
    return out


def statuses_table(statuses: list[dict[str, Any]]) -> Table:
    rows = [
        (s["ts"] or "-", s["kind"], s["reason"],
         "" if s["channel"] is None else str(s["channel"]), json.dumps(s["data"]))
        for s in statuses
    ]  # fmt: skip
    return table(("time", "kind", "reason", "ch", "data"), rows, {"time", "ch"})
