"""`switchgear events`: a device's (or the account's) recent events, then the live stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer

from switchgear.cli.client import CliError, JsonOpt, Target, call
from switchgear.cli.output import console, errors
from switchgear.cli.remote import remote

DeviceOpt = Annotated[int | None, typer.Option("--device", "-d", help="Only this device's.")]
Follow = Annotated[
    bool, typer.Option("--follow", "-f", help="Then print live events as they happen.")
]
Last = Annotated[int, typer.Option(min=0, help="How many recent events to print first.")]
RECENT_S = 3600.0  # how far back the recent events reach

Count = Annotated[
    int | None, typer.Option(min=1, help="With --follow: exit after this many live events.")
]


@remote
def events(
    target: Target,
    device: DeviceOpt = None,
    follow: Follow = False,
    last: Last = 10,
    count: Count = None,
    as_json: JsonOpt = False,
) -> None:
    """Relay changes, triggers and readings: the last few, then (--follow) live ones.

    With --json each event is one line of JSON, for scripts.
    """
    for event in recent(target, device, last):
        show(event, as_json)
    if not follow:
        return
    try:
        for n, event in enumerate(live(target, device), 1):
            show(event, as_json)
            if count is not None and n >= count:
                return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def recent(target: Target, device: int | None, last: int) -> list[dict[str, Any]]:
    """The last `last` status records of the past hour (server time) of the device, or of
    each of the account's devices, oldest first."""
    if last <= 0:
        return []
    ids = [device] if device is not None else [
        d["id"] for d in call(target, "GET", "/api/v1/devices")
    ]  # fmt: skip
    now = call(target, "GET", "/api/v1/sim/clock")["epoch"]
    since = datetime.fromtimestamp(now - RECENT_S, UTC).isoformat()
    found: list[dict[str, Any]] = []
    for device_id in ids:
        params: dict[str, Any] = {"start": since, "limit": 5000}
        tail: list[dict[str, Any]] = []
        while True:
            page = call(target, "GET", f"/api/v1/devices/{device_id}/history", params=params)
            tail = (tail + page["statuses"])[-last:]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        found += tail
    found.sort(key=lambda s: str(s.get("ts") or ""))
    return found[-last:]


def live(target: Target, device: int | None) -> Iterator[dict[str, Any]]:
    """The server-sent events of `GET /api/v1/events`, until the server ends the stream."""
    params = {"device": device} if device is not None else {}
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    timeout = httpx.Timeout(30, read=None)  # a quiet stream is no error
    try:
        with (
            httpx.Client(base_url=target.url, timeout=timeout) as client,
            client.stream("GET", "/api/v1/events", params=params, headers=headers) as r,
        ):
            if r.status_code >= 400:
                r.read()
                raise CliError(f"{_detail(r)} (HTTP {r.status_code})")
            for name, data in sse(r.iter_lines()):
                if name == "end":
                    reason = json.loads(data).get("reason", "") if data else ""
                    errors.print(
                        f"stream ended: {reason}", highlight=False, markup=False, soft_wrap=True
                    )
                    return
                yield json.loads(data)
    except httpx.ConnectError:
        raise CliError(f"no switchgear server answers at {target.url}") from None
    except httpx.HTTPError as err:
        raise CliError(f"event stream from {target.url} failed: {err}") from None


def sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each server-sent event; comments (keep-alives) are skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def show(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print(json.dumps(event), highlight=False, markup=False, soft_wrap=True)
        return
    ts = event.get("ts")
    when = datetime.fromtimestamp(ts, UTC).isoformat() if isinstance(ts, int | float) else ts
    channel = event.get("channel")
    where = f"device {event.get('device_id')}" + ("" if channel is None else f" ch {channel}")
    what = f"{event.get('kind')}/{event.get('reason')}"
    data = json.dumps(event.get("data") or {})
    console.print(f"{when}  {where}  {what}  {data}", highlight=False, markup=False, soft_wrap=True)


def _detail(r: httpx.Response) -> str:
    try:
        problem = r.json()
        return str(problem.get("detail") or problem.get("title") or r.reason_phrase)
    except ValueError:
        return r.text or r.reason_phrase
