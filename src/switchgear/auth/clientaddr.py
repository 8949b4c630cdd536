"""The client address sign-in throttling counts by: the peer, or what a trusted proxy says."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks (ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(t.strip(), strict=False) for t in trusted)


def _trusted(host: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address(conn: HTTPConnection, trusted: Sequence[str] = ()) -> str:
    """The peer's address; when the peer is a trusted proxy, the right-most address of
    `X-Forwarded-For` that is not itself a trusted proxy (a client can prepend anything,
    so only what the proxies appended counts)."""
    peer = conn.client.host if conn.client else ""
    nets = networks(tuple(trusted))
    if not nets or not _trusted(peer, nets):
        return peer
    hops = [h.strip() for v in conn.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, nets):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage a proxy passed on: count it against the proxy's peer
    return peer
