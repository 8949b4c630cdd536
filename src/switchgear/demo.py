"""The demo: two accounts with a simulated fleet each, and the credentials file.

Demo credentials are kept in plaintext in the database's meta table (key "demo") so a
restarted demo hands out the same working credentials; a real deployment has no such row.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchgear.auth.scopes import KIND_NATIVE
from switchgear.backfill import backfill
from switchgear.core.model import Action, Device, Json, Switch
from switchgear.core.ports import SimAction
from switchgear.demofleet import grow
from switchgear.devices.pcdata import HOUSEHOLD_DRAWS
from switchgear.dialects import dialects
from switchgear.runtime import Runtime

TOKEN_TTL_S = 365 * 86_400.0


@dataclass(frozen=True)
class FleetRow:
    """One demo device: model, name, serial pattern, attributes and loads per channel."""

    model: str
    name: str
    serial: str  # formatted with {a} = account index (0, 1) and {r} = random digits
    tags: tuple[str, ...]
    attrs: Mapping[str, str]
    loads: Mapping[int, Mapping[str, Any]]
    switched_on: tuple[int, ...] = ()  # channels the demo switches on after seeding
    lifetime_wh: tuple[float, ...] = ()  # import registers per metering point at seeding


FLEET: tuple[FleetRow, ...] = (
    FleetRow(
        "SHPLG-1",
        "Kitchen fridge plug",
        "SPG9{a}{r:05d}",
        ("kitchen",),
        {},
        {
            0: {
                "type": "cycling",
                "watts": 120.0,
                "on_s": 600.0,
                "off_s": 1200.0,
                "power_factor": 0.85,
            }
        },
        switched_on=(0,),
        lifetime_wh=(1_050_000.0,),  # a fridge's three years
    ),
    FleetRow(
        "LG-MULTI-4",
        "Office strip",
        "LGM-{a}{r:06d}",
        ("office",),
        {"plant": "Home", "plant_id": "{plant_id}"},
        {
            0: {"type": "constant", "watts": 40.0, "power_factor": 0.95},
            1: {"type": "constant", "watts": 95.0, "power_factor": 0.9},
            2: {"type": "constant", "watts": 0.0},
            3: {"type": "constant", "watts": 6.0, "power_factor": 0.7},
        },
        switched_on=(0, 1, 3),
        lifetime_wh=(410_000.0, 960_000.0, 25_000.0, 52_000.0),
    ),
    FleetRow(
        "power-controller-v10",
        "Water heater (no flowmeter)",
        "PC-SGDEMO{a}{r:04d}-001",
        ("water-heater",),
        {"country": "US", "flowmeter": "none"},
        {
            0: {
                "type": "thermostat",
                "rated_watts": 4500.0,
                "tank_litres": 190.0,
                "draws": HOUSEHOLD_DRAWS,
            }
        },
        lifetime_wh=(21_400_000.0,),
    ),
    FleetRow(
        "power-controller-v10",
        "Water heater (flowmeter)",
        "PC-SGDEMO{a}{r:04d}-002",
        ("water-heater",),
        {"country": "US", "flowmeter": "TUF2000M"},
        {
            0: {
                "type": "thermostat",
                "rated_watts": 3800.0,
                "tank_litres": 150.0,
                "draws": HOUSEHOLD_DRAWS,
            }
        },
        lifetime_wh=(16_900_000.0,),
    ),
    FleetRow("PUSH3", "Push3 gateway", "4016{a}{r:07X}", ("meters",), {}, {}),
    FleetRow(
        "OMNIMETER-V4",
        "Omnimeter",
        "{a}{r:011d}",
        ("meters",),
        {"meter_password": "00000000"},
        {
            0: {"type": "constant", "watts": 850.0, "power_factor": 0.92},
            1: {"type": "constant", "watts": 430.0, "power_factor": 0.88},
            2: {"type": "constant", "watts": 1200.0, "power_factor": 0.95},
        },
        switched_on=(0, 1),  # both relays closed: lines 1 and 2 carry their loads
        lifetime_wh=(28_300_000.0, 14_100_000.0, 39_800_000.0),
    ),
    FleetRow(
        "D101",
        "Garage meter (D101)",
        "19{a}{r:06d}1",
        ("meters",),
        {"version": "standard"},
        {0: {"type": "constant", "watts": 586.0, "power_factor": 0.94}},
        switched_on=(0,),
        lifetime_wh=(12_760_000.0,),
    ),
    FleetRow(
        "D103",
        "Workshop meter (D103)",
        "17{a}{r:06d}3",
        ("meters",),
        {"version": "extended"},
        {
            0: {"type": "constant", "watts": 586.0, "power_factor": 0.94},
            1: {"type": "constant", "watts": 30.0, "power_factor": 0.42},
            2: {"type": "constant", "watts": 37.0, "power_factor": 0.6},
        },
        switched_on=(0,),
        lifetime_wh=(31_200_000.0, 4_500_000.0, 6_100_000.0),
    ),
)

ACCOUNTS = (("demo@switchgear.local", "Demo Account"), ("other@switchgear.local", "Other Account"))


async def seed(rt: Runtime) -> dict[str, Json]:
    """Create the demo accounts and fleets on an empty database; resume them otherwise."""
    existing = await rt.store.meta("demo")
    if isinstance(existing, dict):
        await grow(rt, existing["accounts"][0]["id"], rt.settings.demo_fleet_size)
        return existing
    accounts: list[dict[str, Json]] = []
    for index, (email, name) in enumerate(ACCOUNTS):
        password = secrets.token_urlsafe(12)
        # the first account is the operator (may move the shared clock); the other a tenant
        account = await rt.auth.create_account(email, name, password, operator=index == 0)
        _cred, token = await rt.auth.issue(account.id, KIND_NATIVE, TOKEN_TTL_S, desc="demo")
        await _seed_fleet(rt, account.id, index)
        accounts.append({"id": account.id, "email": email, "password": password, "token": token})
    await rt.journal.flush()  # a week of history before now (once: the demo row says seeded)
    seeded = list(rt.engine.all_devices())
    await backfill(rt.store, seeded, [rt.reading(d.id) for d in seeded], rt.clock.now())
    demo: dict[str, Json] = {"accounts": accounts}
    rt.journal.put_meta("demo", demo)
    await rt.journal.flush()
    await grow(rt, accounts[0]["id"], rt.settings.demo_fleet_size)
    return demo


async def _seed_fleet(rt: Runtime, account_id: int, index: int) -> None:
    gateway_serial = ""
    plant_id = str(uuid.uuid4())  # one plant per account holds its strips
    for row in FLEET:
        serial = row.serial.format(a=index, r=secrets.randbelow(10_000))
        attrs = {k: v.format(plant_id=plant_id) for k, v in row.attrs.items()}
        if row.model == "PUSH3":
            gateway_serial = serial
        if row.model == "OMNIMETER-V4":
            attrs["gateway"] = gateway_serial
        if row.model in ("D101", "D103"):
            attrs["devpass"] = f"{secrets.randbelow(1_000_000):06d}"
        if row.lifetime_wh:  # installed years ago: each device's own history (±10 %)
            spread = 0.9 + secrets.randbelow(2001) / 10_000
            attrs["registers_wh"] = ",".join(f"{wh * spread:.0f}" for wh in row.lifetime_wh)
        device = await rt.add_device(
            Device(
                id=0,
                account_id=account_id,
                serial=serial,
                model=row.model,
                name=row.name,
                created_at=rt.clock.now(),
                tags=row.tags,
                attrs=attrs,
            )
        )
        for channel, load in row.loads.items():
            await rt.simulate(
                account_id, device.id, SimAction("load", channel=channel, load=dict(load))
            )
        for channel in row.switched_on:
            await rt.engine.command(account_id, device.id, Switch(Action.ON, channel))


async def credentials(rt: Runtime, demo: dict[str, Json], base_url: str) -> dict[str, Json]:
    """The credentials file's content (layout in docs/demo.md).

    Each dialect refreshes its own section (an access token that expired since the last
    start is replaced); the sections are kept in the demo row for the next start.
    """
    sections = []
    for account in demo["accounts"]:
        section: dict[str, Json] = {}
        stored = account.get("dialects") or {}
        for dialect in dialects():
            section[dialect.name] = await dialect.demo_section(
                rt, account["id"], stored.get(dialect.name)
            )
        account["dialects"] = {d.name: section[d.name] for d in dialects()}
        sections.append(section)
    rt.journal.put_meta("demo", demo)
    await rt.journal.flush()
    first, other = demo["accounts"][0], demo["accounts"][1]
    out: dict[str, Json] = {
        "base_url": base_url,
        "speed": rt.settings.speed,
        "account": _account_entry(first),
        "other_account": {**_account_entry(other), **sections[1]},
    }
    out.update(sections[0])
    return out


def _account_entry(a: Mapping[str, Json]) -> dict[str, Json]:
    return {"email": a["email"], "password": a["password"], "token": a["token"]}


def write_credentials(path: str | os.PathLike[str], content: Mapping[str, Json]) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
