"""Is a destination host this machine? Decided from the host text alone, never through DNS.

The OS connects to a numeric host the way `inet_aton` reads it, so `2130706433`, `0x7f.1`,
`017700000001` and `127.1` all reach 127.0.0.1; `parse_ip` reads them the same way. Anything
that is not a numeric address is a name, and the only name counted as local is `localhost`
(other names would need a DNS lookup, which itself leaks the name and can answer anything).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCAL_NAMES = frozenset({"localhost"})
# inet_aton's limit for the last part of an address written in 1, 2, 3 or 4 parts.
_LAST_PART_MAX = {1: 0xFFFFFFFF, 2: 0xFFFFFF, 3: 0xFFFF, 4: 0xFF}


def _inet_aton_part(text: str) -> int | None:
    """One dotted part as inet_aton reads it: 0x hex, leading-0 octal, else decimal."""
    if text[:2] in ("0x", "0X"):
        digits, base = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    if not digits or not digits.isascii() or not digits.isalnum():
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_inet_aton_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    numbers = [v for v in values if v is not None]
    *head, last = numbers
    if any(v > 0xFF for v in head) or last > _LAST_PART_MAX[len(numbers)]:
        return None
    value = 0
    for v in head:
        value = value << 8 | v
    value = value << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(value)


def parse_ip(host: str) -> IPAddress | None:
    """The address a numeric host names, in any spelling the OS accepts; None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    # A URL carries an IPv6 zone as %25; the address itself is what matters here.
    text = text.replace("%25", "%")
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _parse_inet_aton(text)


def is_loopback_ip(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """True only for loopback addresses in any spelling, and the name `localhost`."""
    ip = parse_ip(host)
    if ip is not None:
        return is_loopback_ip(ip)
    return host.strip().lower() in LOCAL_NAMES


@dataclass(frozen=True, slots=True)
class TrustedHosts:
    """LAN backends the user marked trusted: addresses, networks (CIDR) or exact names."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedHosts:
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for entry in entries:
            kind, value = classify_trusted_entry(entry)
            if kind == "network":
                assert not isinstance(value, str)
                networks.append(value)
            else:
                names.add(str(value))
        return cls(tuple(networks), frozenset(names))

    def allows(self, host: str) -> bool:
        ip = parse_ip(host)
        if ip is not None:
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            return any((mapped or ip) in net for net in self.networks)
        return host.strip().lower().rstrip(".") in self.names


def classify_trusted_entry(entry: str) -> tuple[str, IPNetwork | str]:
    """("network", net) for an address or CIDR, ("name", name) for a host name.

    Raises ValueError for anything else, so settings validation names the bad entry.
    """
    text = entry.strip()
    if not text:
        raise ValueError("an empty trusted host")
    if "/" in text:
        return "network", ipaddress.ip_network(text, strict=False)
    ip = parse_ip(text)
    if ip is not None:
        return "network", ipaddress.ip_network(ip)
    label_chars = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    name = text.lower().rstrip(".")
    if not name or not set(name) <= label_chars or name.startswith(("-", ".")):
        raise ValueError(f"'{entry}' is not an IP address, a network (CIDR) or a host name")
    return "name", name


def destination_allowed(host: str, trusted: TrustedHosts) -> bool:
    """Whether privacy mode lets a connection go to `host` (loopback or trusted only)."""
    return is_loopback_host(host) or trusted.allows(host)
