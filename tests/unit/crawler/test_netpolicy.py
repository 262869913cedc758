"""The network policy: HOSTILE.md S1 (literal targets), S2 (DNS answers), S7 (allow list)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler import netpolicy
from crawler.netpolicy import BadUrl, Blocked, check_ip, check_url, resolve
from rightswatch.config import ConfigError, parse_networks

# S1: each literal target and the address class its refusal must name.
S1 = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0.0.0.0/", "this-network"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fd00::1]/", "unique local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 link-local"),
    ("http://[2002:a9fe:a9fe::]/", "6to4 link-local"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
    ("http://x.localhost/", "loopback"),
    ("http://user@127.0.0.1:80@example.test/", "loopback"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://192.0.2.1/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[::]/", "unspecified"),
    ("https://0x7f.1/", "loopback"),
    ("http://010.0.0.1/", "private"),  # octal reads 8.0.0.1, inet_pton reads 10.0.0.1
]

PUBLIC = [
    "http://example.com/",
    "https://8.8.8.8/x",
    "http://[2606:4700::1111]/",
    "http://bücher.de/",
]


@pytest.mark.parametrize(("url", "cls"), S1)
def test_s1_literal_targets_refused_naming_the_class(url: str, cls: str) -> None:
    with pytest.raises(Blocked) as info:
        check_url(url, ())
    message = str(info.value)
    assert cls in message
    assert "\n" not in message
    assert message.startswith("refused ")


@pytest.mark.parametrize("url", PUBLIC)
def test_public_urls_pass(url: str) -> None:
    check_url(url, ())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "s3://b/k",
        "data:,x",
        "x",
    ],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(Blocked, match="not http or https"):
        check_url(url, ())


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/",
        "http://example.com:99999/",
        "http://1.2.3.4.5/",
        "http://08.1.1.1/",
        "http://exa mple.com/",
        "http://127%2E0.0.1/",
        "http://a..b/",
        "http:///path",
        "http://example.com:0/",
        "http://ex<ample.com/",
    ],
)
def test_malformed_urls_are_bad_url(url: str) -> None:
    with pytest.raises(BadUrl) as info:
        check_url(url, ())
    assert isinstance(info.value, ValueError)


def _blocked_v4() -> st.SearchStrategy[ipaddress.IPv4Address]:
    nets = [net for net, _ in netpolicy.BLOCKED_V4]
    return st.sampled_from(nets).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
            ipaddress.IPv4Address
        )
    )


def _spellings(ip: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """Every way a URL parser (WHATWG, inet_aton) lets one write the same IPv4 address."""
    n = int(ip)
    b = ip.packed

    def part(v: int, style: str) -> str:
        return {
            "dec": str(v),
            "hex": hex(v),
            "HEX": "0X" + format(v, "X"),
            "oct": "0" + oct(v)[2:],
        }[style]

    styles = st.sampled_from(["dec", "hex", "HEX", "oct"])
    forms = st.sampled_from([1, 2, 3, 4])

    def spell(parts: int, s: list[str]) -> str:
        if parts == 1:
            values = [n]
        elif parts == 2:
            values = [b[0], n & 0xFFFFFF]
        elif parts == 3:
            values = [b[0], b[1], n & 0xFFFF]
        else:
            values = list(b)
        return ".".join(part(v, s[i]) for i, v in enumerate(values))

    return st.builds(spell, forms, st.lists(styles, min_size=4, max_size=4))


@given(_blocked_v4().flatmap(lambda ip: st.tuples(st.just(ip), _spellings(ip))), st.booleans())
def test_any_spelling_of_a_blocked_ipv4_is_refused(
    case: tuple[ipaddress.IPv4Address, str], trailing_dot: bool
) -> None:
    ip, host = case
    with pytest.raises(Blocked) as info:
        check_url(f"http://{host}{'.' if trailing_dot else ''}/", ())
    assert not isinstance(info.value, BadUrl)
    assert str(ip) in str(info.value) or host in str(info.value)


@given(_blocked_v4(), st.sampled_from(["::ffff:{}", "64:ff9b::{}", "::ffff:{}"]))
def test_ipv6_embedding_a_blocked_ipv4_is_refused(ip: ipaddress.IPv4Address, form: str) -> None:
    with pytest.raises(Blocked):
        check_url(f"http://[{form.format(ip)}]/", ())
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80))
    with pytest.raises(Blocked):
        check_ip(str(sixtofour), ())


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_table_agrees_with_stdlib_on_ranges_both_consider_private(
    ip: ipaddress.IPv4Address,
) -> None:
    """Whatever the stdlib calls private or reserved, the table refuses too (it may refuse more)."""
    if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved:
        with pytest.raises(Blocked):
            check_ip(str(ip), ())


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_non_canonical_spelling_never_passes(ip: ipaddress.IPv4Address) -> None:
    with pytest.raises(Blocked):
        check_url(f"http://{int(ip)}/", ())


def test_s7_allowing_one_range_allows_only_that_range() -> None:
    allowed = parse_networks("127.0.0.0/8")
    check_url("http://127.0.0.1:8080/", allowed)
    check_url("http://127.0.0.2/", allowed)
    check_url("http://localhost./", parse_networks("127.0.0.0/8,::1/128"))
    check_ip("::ffff:127.0.0.1", allowed)
    for url in (
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://localhost/",
    ):
        with pytest.raises(Blocked):
            check_url(url, allowed)


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not-a-cidr", "0.0.0.0/0", "::/0", "1.2.3"])
def test_s7_malformed_or_everything_cidr_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="RIGHTSWATCH_ALLOW_NETWORKS"):
        parse_networks(value)


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for ip in answers[host]:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            addr = (ip, port, 0, 0) if fam == socket.AF_INET6 else (ip, port)
            out.append((fam, socket.SOCK_STREAM, 6, "", addr))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("answers", "cls"),
    [(["10.0.0.5"], "private"), (["93.184.215.14", "10.0.0.5"], "private"), (["::1"], "loopback")],
)
def test_s2_any_blocked_answer_refuses_the_name(
    monkeypatch: pytest.MonkeyPatch, answers: list[str], cls: str
) -> None:
    _fake_dns(monkeypatch, {"evil.test": answers})
    with pytest.raises(Blocked, match=cls):
        resolve("evil.test", 80, ())


def test_resolve_returns_checked_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"good.test": ["93.184.215.14", "93.184.215.14", "2606:4700::1"]})
    assert resolve("good.test", 80, ()) == ["93.184.215.14", "2606:4700::1"]
    with pytest.raises(socket.gaierror):
        resolve("missing.test", 80, ())


def test_resolve_checks_literals_without_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {})
    assert resolve("8.8.8.8", 53, ()) == ["8.8.8.8"]
    assert resolve("127.0.0.1", 80, parse_networks("127.0.0.1/32")) == ["127.0.0.1"]
    for host in ("127.1", "[::1]", "::1", "0x7f000001", "localhost"):
        with pytest.raises(Blocked):
            resolve(host, 80, ())
