"""Crash and restart: kill -9 the server under a mixed command load, again and again.

    python -m bench.crash [--kills 20] [--speed 5] [--seed 1]

A `switchgear demo` on a SQLite file takes commands on every face (native, smart plug,
multisocket, power controller, Push3, smart-MAIC pout), each worker owning its own
relays, while a delayed switch is pending. At a random moment the server is killed with
SIGKILL and started again on the same file. After every restart the script checks that:

- every acknowledged command's effect is there (relays are set to power on as they
  were, so the last acknowledged state must be the state after the reboot);
- every acknowledged state change has its status record, in order, and no record is
  stored twice;
- pending timers fire at their due time (or at boot if they fell due while it was down);
- energy in `update` statuses never goes backwards, and no live register reads below it.

It prints one line per restart and a summary: commands acknowledged, lost (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.demoproc import start_demo
from bench.run import _free_port


@dataclass
class Server:
    db: Path
    port: int
    speed: float
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        self.proc, creds = start_demo(self.db, self.port, self.speed)
        return creds

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@dataclass
class Target:
    """One relay a worker owns, and how each face switches it."""

    face: str
    device_id: int  # native id, for reading back
    channel: int
    send: Any  # async (client, creds, on) -> bool (acknowledged)


@dataclass
class Ledger:
    acked: int = 0
    refused: int = 0  # not acknowledged (e.g. cut off by the kill): no promise was made
    expected: dict[tuple[int, int], bool] = field(default_factory=dict)
    changes: dict[tuple[int, int], list[bool]] = field(default_factory=dict)
    # a command cut off by the kill was never acknowledged, but it may have been applied
    in_flight: dict[tuple[int, int], bool] = field(default_factory=dict)

    def ack(self, t: Target, on: bool) -> None:
        self.acked += 1
        key = (t.device_id, t.channel)
        if self.expected.get(key) != on:
            self.changes.setdefault(key, []).append(on)
        self.expected[key] = on


async def _native(
    c: httpx.AsyncClient, creds: dict[str, Any], device: int, ch: int, on: bool
) -> bool:
    r = await c.post(
        f"/api/v1/devices/{device}/channels/{ch}/switch",
        json={"action": "on" if on else "off"},
        headers={"Authorization": f"Bearer {creds['account']['token']}"},
    )
    return r.status_code == 200 and r.json()["state"] == "done"


def targets(creds: dict[str, Any], devices: list[dict[str, Any]]) -> list[Target]:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for d in devices:
        by_model.setdefault(d["model"], []).append(d)
    plug, strip = by_model["SHPLG-1"][0], by_model["LG-MULTI-4"][0]
    pcs, meter = by_model["power-controller-v10"], by_model["D103"][0]
    out: list[Target] = []

    async def smartplug(c: httpx.AsyncClient, cr: dict[str, Any], on: bool) -> bool:
        r = await c.post(
            "/provider/send",
            json={
                "serial_number": plug["serial"],
                "command": "switch_on_off",
                "state": "on" if on else "off",
            },
            headers={"Authorization": f"Bearer {cr['smartplug']['access_token']}"},
        )
        return r.status_code == 200

    out.append(Target("smartplug", plug["id"], 0, smartplug))
    for n in (1, 2):  # sockets 1 and 2 through the multisocket API, 0 and 3 natively

        async def multisocket(
            c: httpx.AsyncClient, cr: dict[str, Any], on: bool, n: int = n
        ) -> bool:
            plug_id = cr["multisocket"]["plugs"][n]["id"]
            url = (
                f"/multioutlet/plug/energy/addressLocation/plants/{cr['multisocket']['plant_id']}"
                f"/parameter/id/value/{plug_id}"
            )
            r = await c.post(
                url,
                json={"status": [on]},
                headers={
                    "Ocp-Apim-Subscription-Key": cr["multisocket"]["subscription_key"],
                    "Authorization": cr["multisocket"]["id_token"],
                },
            )
            return r.status_code == 200

        out.append(Target("multisocket", strip["id"], n, multisocket))
    for ch in (0, 3):

        async def native(c: httpx.AsyncClient, cr: dict[str, Any], on: bool, ch: int = ch) -> bool:
            return await _native(c, cr, strip["id"], ch, on)

        out.append(Target("native", strip["id"], ch, native))

    async def powercontroller(c: httpx.AsyncClient, cr: dict[str, Any], on: bool) -> bool:
        r = await c.post(
            f"/v1/devices/{cr['powercontroller']['device_ids'][0]}/command",
            json={"command": {"name": "on" if on else "off"}},
            headers={"Authorization": f"Bearer {cr['powercontroller']['token']}"},
        )
        return r.status_code == 200

    out.append(Target("powercontroller", pcs[0]["id"], 0, powercontroller))

    async def meterhttp(c: httpx.AsyncClient, cr: dict[str, Any], on: bool) -> bool:
        m = next(x for x in cr["meterhttp"]["meters"] if x["devid"] == meter["serial"])
        r = await c.get(
            f"/?page=getdata&devid={m['devid']}&devpass={m['devpass']}&pout={1 if on else 0}"
        )
        return r.status_code == 200

    out.append(Target("meterhttp", meter["id"], 0, meterhttp))
    return out


async def drive(
    base: str,
    creds: dict[str, Any],
    ts: list[Target],
    ledger: Ledger,
    stop: asyncio.Event,
    rng: random.Random,
) -> None:
    """Each target switched back and forth by its own worker until the kill."""

    async def worker(t: Target) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=5) as c:
            while not stop.is_set():
                key = (t.device_id, t.channel)
                on = not ledger.expected.get(key, True)
                ledger.in_flight[key] = on
                try:
                    ok = await t.send(c, creds, on)
                except (httpx.HTTPError, asyncio.CancelledError):
                    ok = False
                if ok:
                    ledger.ack(t, on)
                    ledger.in_flight.pop(key, None)
                else:
                    ledger.refused += 1
                    if stop.is_set():
                        return
                await asyncio.sleep(rng.uniform(0, 0.05))

    await asyncio.gather(*(worker(t) for t in ts))


async def settle(base: str, creds: dict[str, Any]) -> list[dict[str, Any]]:
    """Every relay of account A powers on as it was (so commanded state is rebooted state)."""
    h = {"Authorization": f"Bearer {creds['account']['token']}"}
    async with httpx.AsyncClient(base_url=base, headers=h, timeout=10) as c:
        devices = (await c.get("/api/v1/devices")).json()
        for d in devices:
            if (d["channels"] and d["family"] != "meter") or d["model"] == "D103":
                r = await c.patch(f"/api/v1/devices/{d['id']}/settings", json={"power_on": "last"})
                assert r.status_code == 200, r.text
        return list(devices)


async def verify(
    base: str, creds: dict[str, Any], ledger: Ledger, energy_seen: dict[int, float]
) -> list[str]:
    """Everything promised before the kill, read back after the restart: the problems."""
    problems: list[str] = []
    h = {"Authorization": f"Bearer {creds['account']['token']}"}
    async with httpx.AsyncClient(base_url=base, headers=h, timeout=20) as c:
        devices = {d["id"]: d for d in (await c.get("/api/v1/devices")).json()}
        for (device, ch), on in list(ledger.expected.items()):
            actual = devices[device]["channels"][ch]["on"]
            maybe = ledger.in_flight.pop((device, ch), None)
            if actual == maybe and actual != on:
                ledger.expected[(device, ch)] = actual  # the unacknowledged one landed
                ledger.changes.setdefault((device, ch), []).append(actual)
            elif actual != on:
                problems.append(f"device {device} ch {ch}: acknowledged {on}, found {actual}")
        for device in {d for d, _ in ledger.expected}:
            records = await _history(c, device)
            ids = [r["id"] for r in records]
            if len(ids) != len(set(ids)):
                problems.append(f"device {device}: a status record is stored twice")
            keys = [
                (
                    r["ts"],
                    r["kind"],
                    r["reason"],
                    r["channel"],
                    json.dumps(r["data"], sort_keys=True),
                )
                for r in records
            ]
            if len(keys) != len(set(keys)):
                problems.append(f"device {device}: identical status records")
            for ch in {c_ for d_, c_ in ledger.expected if d_ == device}:
                seen = [
                    r["data"].get("on")
                    for r in records
                    if r["kind"] == "relay" and r["channel"] == ch
                ]
                if not _subsequence(ledger.changes.get((device, ch), []), seen):
                    problems.append(f"device {device} ch {ch}: acknowledged changes missing")
            energies = [
                r["data"]["energy_wh"]
                for r in records
                if r["kind"] == "update" and "energy_wh" in r["data"]
            ]
            if any(b < a - 1e-6 for a, b in itertools.pairwise(energies)):
                problems.append(f"device {device}: energy went backwards in history")
            live = sum(m["energy_wh"] for m in devices[device]["meters"])
            if energies and live < energies[-1] - 1e-6:
                problems.append(f"device {device}: live energy below its last update")
            energy_seen[device] = max(energy_seen.get(device, 0.0), energies[-1] if energies else 0)
    return problems


async def _history(c: httpx.AsyncClient, device: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"start": "2000-01-01T00:00:00Z", "limit": 5000}
        if cursor:
            params["cursor"] = cursor
        page = (await c.get(f"/api/v1/devices/{device}/history", params=params)).json()
        for r in page["statuses"]:
            r["ts"] = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
        out += page["statuses"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def _subsequence(wanted: list[bool], seen: list[Any]) -> bool:
    it = iter(seen)
    return all(any(s == w for s in it) for w in wanted)


async def check_timer(
    c: httpx.AsyncClient, timer: tuple[int, float], boot: float, now: float
) -> tuple[bool, str | None]:
    """(settled, problem): a due timer must have fired at its due time, or at boot when it
    fell due while the server was down."""
    device, due = timer
    if now < due + 2:
        return False, None
    records = await _history(c, device)
    fired = [
        r["ts"]
        for r in records
        if r["kind"] == "relay" and r["reason"] == "timer" and r["ts"] >= due - 1e-3
    ]
    if not fired:
        return True, f"timer due {due:.3f} on device {device} never fired"
    expected = max(due, boot)
    if fired[0] > expected + 1.0:
        return True, f"timer due {due:.3f} fired late at {fired[0]:.3f}"
    return True, None


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--speed", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="switchgear-crash-"))
    server = Server(tmp / "crash.db", _free_port(), args.speed)
    creds = server.start()
    base = creds["base_url"]
    devices = await settle(base, creds)
    ts = targets(creds, devices)
    # the second power controller carries a delayed switch across the kills
    timer_device = [d for d in devices if d["model"] == "power-controller-v10"][1]["id"]
    ledger, problems_total = Ledger(), 0
    energy: dict[int, float] = {}
    timer: tuple[int, float] | None = None
    timers_checked, boot = 0, 0.0
    started = time.monotonic()
    for n in range(1, args.kills + 1):
        h = {"Authorization": f"Bearer {creds['account']['token']}"}
        async with httpx.AsyncClient(base_url=base, headers=h, timeout=10) as c:
            now = (await c.get("/api/v1/sim/clock")).json()["epoch"]
            if timer is not None:
                settled, problem = await check_timer(c, timer, boot, now)
                if settled:
                    timers_checked += 1
                    timer = None
                    if problem:
                        problems_total += 1
                        print(f"    {problem}", flush=True)
            if timer is None:
                delay = rng.uniform(2, 15)
                r = await c.post(
                    f"/api/v1/devices/{timer_device}/channels/0/switch",
                    json={"action": "toggle", "delay": delay},
                )
                if r.status_code == 200:
                    timer = (timer_device, now + delay)
        stop = asyncio.Event()
        load = asyncio.create_task(drive(base, creds, ts, ledger, stop, rng))
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        server.kill()
        stop.set()
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
        creds = server.start()
        base = creds["base_url"]
        async with httpx.AsyncClient(base_url=base, headers=h, timeout=10) as c:
            boot = (await c.get("/api/v1/sim/clock")).json()["epoch"]
        await asyncio.sleep(0.5)  # overdue timers and kept requests run at boot
        problems = await verify(base, creds, ledger, energy)
        problems_total += len(problems)
        print(
            f"restart {n:2d}: {ledger.acked} acknowledged so far, {len(problems)} problems"
            + "".join(f"\n    {p}" for p in problems),
            flush=True,
        )
    server.kill()
    print(
        json.dumps(
            {
                "kills": args.kills,
                "acknowledged": ledger.acked,
                "lost": problems_total,
                "not_acknowledged": ledger.refused,
                "timers_checked": timers_checked,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
