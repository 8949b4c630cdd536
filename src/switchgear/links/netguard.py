"""Where the server may send its own requests: a polled URL, checked after DNS, and pinned.

A meter URL is given by a tenant, and the server fetches it again and again, so it is a
way to make the server reach anything it can reach (server-side request forgery). Every
address the host resolves to must lie in the operator's allowed networks, and cloud
metadata addresses are refused even then. The request then goes to the checked address
itself (the original host in `Host` and TLS SNI), so a DNS answer that changes between
the check and the connection (rebinding) reaches nothing new.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from switchgear.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Private LAN ranges, where real meters live. Loopback (127/8, ::1), link-local
# (169.254/16, fe80::/10), "this host" (0/8, ::) and everything public are outside.
DEFAULT_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
# Cloud instance metadata services: refused even when an allowed network holds them.
METADATA = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
)


def networks(texts: Sequence[str]) -> tuple[Network, ...]:
    """Parse an allow-list (`10.0.0.0/8`, `192.168.4.1`, `fc00::/7`); ValueError if bad."""
    return tuple(ipaddress.ip_network(t.strip(), strict=False) for t in texts)


class Resolver(Protocol):
    """Host name to addresses (the DNS seam)."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo, off the event loop)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]


class StaticResolver:
    """A fake resolver from a table; a name not in it does not resolve."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self.table = {k.lower(): list(v) for k, v in (table or {}).items()}

    async def resolve(self, host: str, port: int) -> list[str]:
        if host.lower() not in self.table:
            raise OSError(f"{host} does not resolve")
        return list(self.table[host.lower()])


@dataclass(frozen=True)
class Target:
    """A checked URL: the request goes to `url` (the address), saying `host` as its name."""

    url: httpx.URL
    host: str  # the Host header: the URL's own host[:port]
    address: Address
    extensions: dict[str, str]


def _address(text: str) -> Address:
    addr = ipaddress.ip_address(text.split("%", 1)[0])  # a scoped IPv6 loses its zone
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return addr


class NetGuard:
    """Checks a URL's addresses against the allowed networks (refusing metadata services)."""

    def __init__(self, allowed: Sequence[str], resolver: Resolver | None = None) -> None:
        self.allowed = networks(allowed)
        self.resolver: Resolver = resolver or SystemResolver()

    def allows(self, addr: Address) -> bool:
        if any(addr in net for net in METADATA):
            return False
        return any(addr.version == net.version and addr in net for net in self.allowed)

    async def check(self, url: str) -> Target:
        """The URL pinned to a checked address; InvalidInput (field `url`) if refused."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as err:
            raise InvalidInput("url is not a valid URL", field="url") from err
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInput("url must be http:// or https:// with a host", field="url")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = [_address(parsed.host)]
        except ValueError:  # a name: ask DNS
            try:
                found = [_address(a) for a in await self.resolver.resolve(parsed.host, port)]
            except (OSError, ValueError, UnicodeError) as err:
                raise InvalidInput("url: its host does not resolve", field="url") from err
        if not found:
            raise InvalidInput("url: its host does not resolve", field="url")
        # every address must be allowed: a name answering [LAN, loopback] is refused
        if not all(self.allows(a) for a in found):
            raise InvalidInput(
                "url: the meter's address is outside the networks this server may poll",
                field="url",
            )
        addr = found[0]
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        return Target(
            parsed.copy_with(host=str(addr)), parsed.netloc.decode("ascii"), addr, extensions
        )
