"""Which addresses a server-side fetch may reach, and the BEATRA_NET_ALLOWLIST exception.

`is_public(ip)` is the default rule: only globally routable unicast addresses. Every embedded
IPv4 form inside IPv6 (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by the IPv4
address it carries, so ::ffff:127.0.0.1 or 64:ff9b::a00:1 are refused like 127.0.0.1 and 10.0.0.1.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never public
_IPV4_COMPAT = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN or ip in _IPV4_COMPAT:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _v4_public(ip: ipaddress.IPv4Address) -> bool:
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified or ip in _CGNAT or not ip.is_global
    )


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_public(ip)
    if ip.scope_id:
        return False  # a zone index only means something on a local link
    inner = embedded_ipv4(ip)
    if inner is not None:
        return _v4_public(inner)
    if ip in _NAT64_LOCAL:
        return False
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_site_local
        or ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global
    )


@dataclass(frozen=True)
class NetPolicy:
    """BEATRA_NET_ALLOWLIST: comma-separated host names and/or CIDRs (a bare IP is a /32 or
    /128). A listed host, or an address inside a listed network, may be reached even when it
    is not public, and over plain http. Empty (the default) allows public https only."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str) -> NetPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def host_listed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_listed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in net for c in candidates for net in self.networks
                   if c.version == net.version)
