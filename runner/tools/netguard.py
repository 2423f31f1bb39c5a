"""Which network addresses an HTTP tool may reach (the SSRF guard).

A model chooses arguments, and arguments shape requests; this module makes sure the request can
only land on public addresses. Every address a host name resolves to is checked (one bad answer
blocks the host, so a DNS server cannot slip a private address in second place), numeric forms
(``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``) are resolved and checked the same way, and the
caller connects to the address that was checked rather than resolving again.

Cloud metadata endpoints stay blocked even with ``allow_private_network: true``: there is no
legitimate reason for a workflow tool to read instance credentials.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services (AWS, GCP, Azure, AWS ECS, Alibaba, AWS IPv6, Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192")
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class BlockedAddress(Exception):
    """The target is not allowed. The message names the host and the reason, never a secret."""


@dataclass(frozen=True)
class Vetted:
    host: str  # the name as written in the URL
    address: str  # the checked IP to connect to


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden inside an IPv6 one (mapped, NAT64, 6to4, Teredo, compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    # Deprecated IPv4-compatible form ::a.b.c.d (but not :: and ::1 themselves).
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``ip`` may not be reached, or None when it may."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = address_problem(inner, allow_private=allow_private)
            return f"{why} (embedded in an IPv6 address)" if why else None
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return "a unique-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved or non-public address"
    return None


async def getaddrinfo(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to. Tests replace this function to stub DNS."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def vet_host(host: str, port: int, *, allow_private: bool = False) -> Vetted:
    """Resolve ``host`` and check every answer; return the address to connect to.

    Raises BlockedAddress when the host is a metadata name, does not resolve, or any of its
    addresses is disallowed."""
    name = host.strip("[]").rstrip(".").lower()
    if not name:
        raise BlockedAddress("the URL has no host")
    if name in METADATA_NAMES:
        raise BlockedAddress(f"host {name} is a cloud metadata service; it is always blocked")
    literal = _literal(name)
    if literal is not None:
        answers = [str(literal)]
    else:
        try:
            answers = await getaddrinfo(name, port)
        except (socket.gaierror, UnicodeError, OSError) as e:
            raise BlockedAddress(f"cannot resolve host {name}: {_gai_reason(e)}") from None
    if not answers:
        raise BlockedAddress(f"host {name} resolves to no address")
    chosen: str | None = None
    for answer in answers:
        ip = _literal(answer)
        if ip is None:
            raise BlockedAddress(f"host {name} resolves to an unreadable address")
        why = address_problem(ip, allow_private=allow_private)
        if why is not None:
            hint = "" if allow_private or "metadata" in why else " (set allow_private_network: true to allow it)"
            what = f"is {why}" if literal is not None else f"resolves to {ip}, {why}"
            raise BlockedAddress(f"host {name} {what}; blocked{hint}")
        chosen = chosen or str(ip)
    return Vetted(host=name, address=chosen or answers[0])


def _gai_reason(e: BaseException) -> str:
    if isinstance(e, socket.gaierror) and e.strerror:
        return e.strerror
    return type(e).__name__
