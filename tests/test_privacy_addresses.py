"""Which destinations privacy mode allows: host text read as the OS reads it, never via DNS."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router_core.addresses import TrustedHosts, destination_allowed, is_loopback_host, parse_ip

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",  # a.b: b fills the last 24 bits
    "127.0.1",  # a.b.c: c fills the last 16 bits
    "2130706433",  # one 32-bit number
    "0x7f000001",
    "0x7f.1",
    "0X7F.0.0.1",
    "017700000001",  # octal
    "0177.0.0.1",
    "0177.0.0.01",
    "127.255.255.254",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "::1%25lo",  # a zone, as a URL carries it
    "localhost",
    "LOCALHOST",
]

NOT_LOCAL = [
    "10.99.0.1",
    "174260225",  # 10.99.0.1 as one number
    "0xa.0x63.0.1",
    "012.0143.0.01",  # 10.99.0.1 in octal parts
    "0127.0.0.1",  # octal 0127 is 87: 87.0.0.1, not loopback
    "::ffff:10.99.0.1",
    "::127.0.0.1",  # IPv4-compatible: not routed to loopback
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: leaves the machine
    "0.0.0.0",
    "fe80::1",
    "api.openai.com",
    "localhost.",  # a trailing dot asks DNS
    "localhost.localdomain",
    "foo.localhost",
    "127.0.0.1.nip.io",  # a DNS name that answers 127.0.0.1 - still a name
    "127.0.0.1.",
    "4294967296",  # too big for IPv4: a name, not an address
    "127.0.0.256",
    "0x7g.0.0.1",
    "08.0.0.1",  # 8 is not an octal digit
    "%6c%6fcalhost",
    "",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_in_every_spelling_is_local(host: str) -> None:
    assert is_loopback_host(host)
    assert destination_allowed(host, TrustedHosts())


@pytest.mark.parametrize("host", NOT_LOCAL)
def test_everything_else_is_not_local(host: str) -> None:
    assert not is_loopback_host(host)
    assert not destination_allowed(host, TrustedHosts())


@pytest.mark.parametrize(
    "host", [h for h in LOOPBACK_SPELLINGS + NOT_LOCAL if parse_ip(h) is not None and ":" not in h]
)
def test_parse_agrees_with_the_c_library(host: str) -> None:
    """For every numeric IPv4 spelling we accept, libc's inet_aton reads the same address."""
    assert socket.inet_ntoa(socket.inet_aton(host)) == str(parse_ip(host))


@pytest.mark.parametrize("host", ["127.0.0.256", "0x7g.0.0.1", "08.0.0.1", "4294967296", "1.2.3.4.5"])
def test_what_we_do_not_read_as_an_address_libc_does_not_either(host: str) -> None:
    assert parse_ip(host) is None
    with pytest.raises(OSError):
        socket.inet_aton(host)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(["{:d}", "{:#x}", "0{:o}"]))
def test_any_number_spelling_reads_as_its_address(value: int, spelling: str) -> None:
    text = spelling.format(value)
    assert parse_ip(text) == ipaddress.IPv4Address(value)
    assert is_loopback_host(text) == (value >> 24 == 127)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://2130706433:8/", True),
        ("http://0x7f.1:8/", True),
        ("http://[::ffff:127.0.0.1]:8/", True),
        ("http://[::1]:9/", True),
        ("http://LocalHost:1/", True),
        ("http://174260225:8/", False),
        ("http://[::ffff:10.99.0.1]/", False),
        ("http://cloud.example/", False),
    ],
)
def test_httpx_hosts_are_judged_as_sent(url: str, local: bool) -> None:
    """The guard reads `raw_host`, the bytes httpcore connects to."""
    host = httpx.URL(url).raw_host.decode()
    assert destination_allowed(host, TrustedHosts()) is local


def test_trusted_lan_hosts() -> None:
    trusted = TrustedHosts.parse(["192.168.1.20", "10.0.0.0/24", "GPU-Box.lan", "fd00::/8"])
    assert trusted.allows("192.168.1.20")
    assert trusted.allows("3232235796")  # 192.168.1.20 as a number
    assert trusted.allows("::ffff:192.168.1.20")
    assert trusted.allows("10.0.0.77")
    assert trusted.allows("gpu-box.lan")
    assert trusted.allows("fd12::1")
    assert not trusted.allows("192.168.1.21")
    assert not trusted.allows("10.0.1.1")
    assert not trusted.allows("gpu-box.lan.evil.com")
    assert not trusted.allows("api.openai.com")


@pytest.mark.parametrize("entry", ["", "not a host", "10.0.0.0/33", "http://x", "-x"])
def test_bad_trusted_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        TrustedHosts.parse([entry])
