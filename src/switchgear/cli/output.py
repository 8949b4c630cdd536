"""Rich rendering of devices, commands and statuses for the CLI."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def devices_table(devices: list[dict[str, Any]]) -> Table:
    """Ids, serials, models and numbers keep their full width at any terminal width (a
    number cut to `4500…` is a wrong number); names and relays wrap instead."""
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
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    whole = {"id", "serial", "power W"}
    names = ("id", "serial", "family", "model", "name", "online", "relays", "power W")
    for i, name in enumerate(names):
        if name in whole:
            width = max([len(name), *(len(r[i]) for r in rows)])
            if name in ("id", "power W"):
                t.add_column(name, no_wrap=True, min_width=width, justify="right")
            else:
                t.add_column(name, no_wrap=True, min_width=width)
        else:
            t.add_column(name, overflow="fold", min_width=min(6, len(name)))
    for row in rows:
        t.add_row(*row)
    return t


def device_tables(d: dict[str, Any]) -> list[Table]:
    head = Table("field", "value", title=f"device {d['id']}: {d['name']}")
    for key in ("serial", "family", "model", "online", "reported_at", "temperature_c"):
        head.add_row(key, str(d[key]))
    out = [head]
    if d["channels"]:
        ch = Table(
            "ch",
            "name",
            "on",
            "toggle at",
            "overpower",
            "power-on",
            "auto-off s",
            "auto-on s",
            "max W",
            title="channels",
        )
        for c in d["channels"]:
            s = c["settings"]
            ch.add_row(
                str(c["index"]),
                c["name"],
                "on" if c["on"] else "off",
                c["toggle_at"] or "-",
                str(c["overpower"]),
                s["power_on"],
                str(s["auto_off_s"]),
                str(s["auto_on_s"]),
                str(s["max_power_w"] or "-"),
            )
        out.append(ch)
    if d["meters"]:
        m = Table("pt", "V", "A", "W", "rev W", "PF", "Hz", "Wh", "rev Wh", title="meters")
        for r in d["meters"]:
            m.add_row(
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
        out.append(m)
    return out


def statuses_table(statuses: list[dict[str, Any]]) -> Table:
    t = Table("time", "kind", "reason", "ch", "data")
    for s in statuses:
        ch = "" if s["channel"] is None else str(s["channel"])
        t.add_row(s["ts"], s["kind"], s["reason"], ch, json.dumps(s["data"]))
    return t
