"""The smart-MAIC meter's local API: `GET /?page=getdata&devid=..&devpass=..[&pout=0|1]`.

The meter answers on the server's root; `/` without `page` is the server's own page.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from switchgear.auth.clientaddr import client_address
from switchgear.core.counters import METER_SLOT
from switchgear.core.engine import raise_for_state
from switchgear.core.model import Action, Device, DeviceState, Switch
from switchgear.dialects.meterhttp.byid import meters
from switchgear.dialects.meterhttp.errors import mapped
from switchgear.dialects.meterhttp.home import home
from switchgear.dialects.meterhttp.pins import PinGuard
from switchgear.dialects.meterhttp.wire import (
    DEFAULT_VERSION,
    INTERVAL_S,
    MeterResponse,
    compact,
    getdata_text,
    readings,
    reply,
)
from switchgear.runtime import Runtime


def version(device: Device) -> str:
    return device.attrs.get("version") or DEFAULT_VERSION.get(device.model, "standard")


def _pins(rt: Runtime) -> PinGuard:
    guard = rt.extensions.get("meterhttp.pins")
    if not isinstance(guard, PinGuard):
        guard = rt.extensions["meterhttp.pins"] = PinGuard(rt.clock, rt.counters)
    return guard


async def _allowed(rt: Runtime, devid: str, interval: float) -> bool:
    """One request per interval per meter, on the server's clock (counted for every worker)."""
    if not rt.settings.meterhttp_rate_limit:
        return True
    now = rt.clock.now()
    tally = await rt.counters.add(METER_SLOT, devid, now, now + interval, limit=1)
    return tally.admitted


@mapped
async def index(request: Request) -> Response:
    # the query as Starlette's QueryParams reads it (last value wins), without its multidict
    params = dict(parse_qsl(request.scope["query_string"].decode("latin-1"), True))
    if "page" not in params:
        return home()
    if params["page"] != "getdata":
        return reply(404, {"error": "unknown page"})
    rt: Runtime = request.app.state.runtime
    devid, devpass = params.get("devid", ""), params.get("devpass", "")
    device = meters(rt).get(devid) if devid else None
    # a cautious device: an unknown devid and a wrong PIN get the same answer, no data;
    # failed PINs count per client address (behind a trusted proxy, the forwarded one),
    # never against the meter's request slot
    address = client_address(request, rt.settings.trusted_proxies)
    guard = _pins(rt)
    attempt = await guard.reserve(address, devid)  # counted before it is checked
    if attempt is None:
        return reply(429, {"error": "too many requests"})
    expected = device.attrs.get("devpass", "") if device else ""
    if device is None or not hmac.compare_digest(devpass.encode(), expected.encode()):
        return reply(403, {"error": "access denied"})
    await guard.succeeded(attempt)
    pout = params.get("pout")
    if pout is not None and pout not in ("0", "1"):  # refused before it spends the slot
        return reply(400, {"error": "pout must be 0 or 1"})
    if not rt.engine.shadow(device.id).online:  # never its last reading dated now
        return reply(503, {"error": "meter unavailable"})
    if not await _allowed(rt, devid, INTERVAL_S[version(device)]):
        return reply(429, {"error": "too many requests"})
    if pout is not None:
        on = Action.ON if pout == "1" else Action.OFF
        raise_for_state(await rt.engine.command(device.account_id, device.id, Switch(on, 0)))
    now = rt.clock.now()
    state, data = _readings(rt, device.id, now)
    return MeterResponse(getdata_text(devid, state, now, data))


def _readings(rt: Runtime, device_id: int, now: float) -> tuple[DeviceState, str]:
    """The meter's state and encoded `data` as measured this second (registers integrated
    up to the read); reused for further reads in the same second of the same shadow."""
    cache: dict[int, tuple[DeviceState, int, DeviceState, str]]
    cache = rt.extensions.setdefault("meterhttp.readings", {})
    shadow, second = rt.engine.shadow(device_id), int(now)
    hit = cache.get(device_id)
    if hit is not None and hit[0] is shadow and hit[1] == second:
        return hit[2], hit[3]
    state = rt.reading(device_id)
    data = compact(readings(state))
    cache[device_id] = (shadow, second, state, data)
    return state, data


def routes() -> list[BaseRoute]:
    return [Route("/", index, methods=["GET", "HEAD"])]
