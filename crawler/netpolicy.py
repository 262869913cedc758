"""The network policy: which addresses rightswatch may connect to.

Everything outside the public Internet is refused unless `RIGHTSWATCH_ALLOW_NETWORKS`
names it. The blocked ranges are an explicit table (IANA special-purpose registries), not
`ipaddress.is_global`, whose answers changed between Python patch releases. IPv6 addresses
that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the embedded address,
and IPv6 outside global unicast (2000::/3) is refused as reserved.

    Blocked            refused URL or address; str() is one line naming the address class
      BadUrl           malformed URL or address (also a ValueError: bad input, exit 2)

Callers: the downloader middleware (URLs, every redirect hop), the Scrapy DNS resolver
(every resolved answer), the browser's egress proxy and the evidence room's TSA client.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlsplit

import idna

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = frozenset({"http", "https"})


class Blocked(Exception):
    """A URL or address the policy refuses; the message says why in one line."""


class BadUrl(Blocked, ValueError):
    """The URL or address cannot be parsed unambiguously."""


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(cidr), name) for cidr, name in rows)


# Most specific first: the first row that contains an address names its class.
BLOCKED_V4 = _table(
    [
        ("255.255.255.255/32", "broadcast"),
        ("0.0.0.0/8", "this-network (0/8)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.31.196.0/24", "AS112 anycast"),
        ("192.52.193.0/24", "AMT anycast"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("192.175.48.0/24", "AS112 anycast"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ]
)

BLOCKED_V6 = _table(
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
        ("2001:20::/28", "ORCHIDv2"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignments"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "SRv6 SIDs"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ]
)

_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), with the form."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    return None


def _allowed(ip: Address, allowed: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in allowed)


def address_class(ip: Address, allowed: Sequence[Network] = ()) -> str | None:
    """The blocked class of an address, or None when the policy lets it through."""
    if _allowed(ip, allowed):
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return next((name for net, name in BLOCKED_V4 if ip in net), None)
    if ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if _allowed(ip, allowed):
            return None
    inner = embedded_v4(ip)
    if inner is not None:
        v4, form = inner
        name = address_class(v4, allowed)
        return None if name is None else f"{form} {name} ({v4})"
    for net, name in BLOCKED_V6:
        if ip in net:
            return name
    return None if ip in _GLOBAL_UNICAST else "reserved"


def parse_ip(ip: str) -> Address:
    """An address from its canonical spelling (IPv6 may carry a %zone), or BadUrl."""
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        raise BadUrl(f"refused {ip!r}: not an IP address") from None


def check_ip(ip: str, allowed: Sequence[Network]) -> None:
    """Raise Blocked unless the policy lets rightswatch connect to this address."""
    name = address_class(parse_ip(ip), allowed)
    if name is not None:
        raise Blocked(f"refused {ip}: {name}")


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, 0x hex or 0-prefixed octal; None if not."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def odd_ipv4(host: str) -> list[ipaddress.IPv4Address] | None:
    """Addresses a non-canonical IPv4 host may mean (`127.1`, `0x7f000001`, `0177.0.0.1`).

    Browsers and inet_aton read `010` as octal; inet_pton-style parsers read it as decimal.
    Both readings are returned so neither can slip past. None: the host is not numeric.
    Raises BadUrl when the host ends in a number but is no valid address (WHATWG does too).
    """
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if _ipv4_number(parts[-1]) is None and not parts[-1].isdigit():
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise BadUrl(f"refused host {host!r}: malformed IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise BadUrl(f"refused host {host!r}: IPv4 address out of range")
    whatwg = values[-1]
    for i, n in enumerate(values[:-1]):
        whatwg += n << (8 * (3 - i))
    out = [ipaddress.IPv4Address(whatwg)]
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        decimal = [int(p, 10) for p in parts]
        if all(n <= 255 for n in decimal):
            out.append(ipaddress.IPv4Address(".".join(map(str, decimal))))
    return out


def check_host(host: str, allowed: Sequence[Network]) -> str:
    """Check a URL host before any lookup; return it canonical (IDNA, lower case, no dot).

    Allowed answers are cached per (host, allowed) (refusals are not): the check runs for
    every request and every redirect hop.
    """
    return _check_host(host, tuple(allowed))


@functools.lru_cache(maxsize=4096)
def _check_host(host: str, allowed: tuple[Network, ...]) -> str:
    """See check_host.

    Literal addresses in any spelling are judged here; names are judged by `resolve`.
    Non-canonical IPv4 spellings are refused even when they mean a public address:
    parsers disagree about them, and no real site needs them.
    """
    if not host:
        raise BadUrl("refused URL: no host")
    if host.startswith("["):
        if not host.endswith("]"):
            raise BadUrl(f"refused host {host!r}: unbalanced brackets")
        literal = unquote(host[1:-1])
        ip = parse_ip(literal)
        if not isinstance(ip, ipaddress.IPv6Address):
            raise BadUrl(f"refused host {host!r}: brackets hold no IPv6 address")
        check_ip(literal, allowed)
        return host.lower()
    if "%" in host or "\\" in host or any(c.isspace() or ord(c) < 0x20 for c in host):
        raise BadUrl(f"refused host {host!r}: percent-encoded, backslash or control character")
    name = host.rstrip(".").lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise BadUrl(f"refused host {host!r}: not a valid host name ({exc})") from None
    if not name or not _HOST_CHARS.issuperset(name) or ".." in name:
        raise BadUrl(f"refused host {host!r}: not a valid host name")
    try:
        canonical = ipaddress.IPv4Address(name)
    except ValueError:
        readings = odd_ipv4(name)
    else:
        check_ip(str(canonical), allowed)
        return name
    if readings is not None:
        for ip in readings:
            cls = address_class(ip, allowed)
            if cls is not None:
                raise Blocked(f"refused {host}: {cls} ({ip})")
        raise Blocked(f"refused {host}: non-canonical IPv4 spelling of {readings[0]}")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        for loopback in ("127.0.0.1", "::1"):
            cls = address_class(ipaddress.ip_address(loopback), allowed)
            if cls is not None:
                raise Blocked(f"refused {host}: {cls} name")
    return name


def check_url(url: str, allowed: Sequence[Network]) -> None:
    """Raise Blocked unless `url` is http(s) with a host the policy does not refuse.

    Names are not resolved here (see `resolve`); literal addresses are. URLs with userinfo
    are refused (`http://user@127.0.0.1:80@example.test/`: parsers disagree about which
    part is the host), naming the address class of a host hidden in the userinfo.
    """
    if _CONTROL.search(url):
        raise BadUrl(f"refused {url[:200]!r}: whitespace or control character in URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadUrl(f"refused {url[:200]!r}: malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise Blocked(f"refused {url[:200]}: scheme {scheme or '(none)'!r} is not http or https")
    if port == 0:
        raise BadUrl(f"refused {url[:200]}: port 0")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = unquote(netloc.rpartition("@")[0])
        for candidate in userinfo.split("@")[1:]:
            try:
                check_host(candidate.partition(":")[0], allowed)
            except BadUrl:
                continue
            except Blocked as exc:
                hidden = str(exc).removeprefix("refused ")
                raise Blocked(f"refused {url[:200]}: userinfo hides {hidden}") from None
        raise Blocked(f"refused {url[:200]}: credentials in URL (userinfo is never followed)")
    if "\\" in netloc:
        raise BadUrl(f"refused {url[:200]!r}: backslash in authority")
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host = hostport[: hostport.find("]") + 1] if "]" in hostport else hostport
    else:
        host = hostport.partition(":")[0]
    check_host(host, allowed)


def host_port(url: str) -> tuple[str, int]:
    """The (host, port) a checked http(s) URL connects to, brackets stripped."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return parts.hostname or "", port


def resolve(host: str, port: int, allowed: Sequence[Network]) -> list[str]:
    """Look `host` up and return its addresses, all checked; Blocked if ANY is refused.

    A name with one blocked answer among public ones is refused outright: the caller
    could otherwise be steered to the blocked one (DNS rebinding, round-robin).
    `socket.gaierror` (an OSError) propagates for names that do not resolve.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        check_ip(host, allowed)
        return [host.split("%", 1)[0]]
    name = check_host(host, allowed)
    try:
        return [str(ipaddress.IPv4Address(name))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0]).split("%", 1)[0]
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Blocked(f"refused {host}: no address")
    for ip in addresses:
        cls = address_class(parse_ip(ip), allowed)
        if cls is not None:
            raise Blocked(f"refused {host}: resolves to {ip}: {cls}")
    return addresses
