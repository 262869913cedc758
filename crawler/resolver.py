"""The Scrapy DNS resolver that enforces the network policy on every resolved address.

Scrapy's HTTP/1.1 handler connects through Twisted's `HostnameEndpoint`, which asks the
reactor's `IHostnameResolver` for a name's addresses and connects only to those. This
resolver (modelled on `scrapy.resolver.CachingHostnameResolver` and Twisted's `GAIResolver`)
looks the name up with `netpolicy.resolve` in the reactor's thread pool: every answer is
checked, one blocked answer refuses the name, and the endpoint receives only addresses
validated in that same lookup. So redirect targets, retries, robots.txt and DNS rebinding (a
later answer that changes to a blocked address) are all covered: each new connection
resolves again or reuses a validated answer, never an unchecked one. Scrapy's module-level
`dnscache` is not used. The same check backs `IResolverSimple.getHostByName` (plain
`connectTCP`), so both reactor entry points are guarded.

A refused name reaches Scrapy as a DNS failure ("no results for hostname lookup"): Twisted's
endpoint has no way to carry a reason. The reason is kept in `REFUSALS` by host name, where
`crawler.middlewares.NetPolicyErrorMiddleware` finds it and turns the failure into the
policy's `IgnoreRequest` (never retried).

IP literals never reach a resolver (Twisted connects to them directly), which is why
`crawler.middlewares.NetPolicyMiddleware` checks every request URL as well.

Settings (read from the CrawlerProcess settings, which Scrapy passes to resolvers):
`NETPOLICY_ALLOW` (list of CIDR strings), `NETPOLICY_DNS_CACHE_S` (seconds a validated answer
is reused; 0 = look up for every connection), `DNS_TIMEOUT`.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Self

from twisted.internet import defer, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IResolverSimple
from zope.interface import implementer  # type: ignore[import-untyped]

from crawler import netpolicy
from crawler.netpolicy import Blocked, Network

logger = logging.getLogger(__name__)


def allowed_networks(value: Sequence[str] | str | None) -> tuple[Network, ...]:
    """`NETPOLICY_ALLOW` as networks (the CLI validated the strings already)."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in value or ())


class _Refusals:
    """Recent refusal reasons by host name (bounded), shared with the middleware."""

    def __init__(self, size: int = 4096) -> None:
        self._lock = threading.Lock()
        self._by_host: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def add(self, host: str, reason: str) -> None:
        with self._lock:
            self._by_host[host.lower()] = reason
            self._by_host.move_to_end(host.lower())
            while len(self._by_host) > self._size:
                self._by_host.popitem(last=False)

    def discard(self, host: str) -> None:
        with self._lock:
            self._by_host.pop(host.lower(), None)

    def get(self, host: str) -> str | None:
        with self._lock:
            return self._by_host.get(host.lower())


REFUSALS = _Refusals()


class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # IHostResolution; lookups are short and time-limited
        raise NotImplementedError


@implementer(IHostnameResolver, IResolverSimple)
class PolicyResolver:
    """Resolve in a thread, check every answer, hand Twisted only validated addresses."""

    def __init__(
        self, reactor: Any, allowed: Sequence[Network], timeout: float, cache_s: float
    ) -> None:
        self.reactor = reactor
        self.allowed = tuple(allowed)
        self.timeout = timeout
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, list[str]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> Self:
        settings = crawler.settings
        return cls(
            reactor,
            allowed_networks(settings.getlist("NETPOLICY_ALLOW")),
            settings.getfloat("DNS_TIMEOUT", 60.0),
            settings.getfloat("NETPOLICY_DNS_CACHE_S", 60.0),
        )

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)
        self.reactor.installNameResolver(self)

    def lookup(self, name: str) -> list[str]:
        """Blocking: the validated addresses of `name` (runs in the thread pool).

        Raises DNSLookupError with the policy's reason when the name is refused.
        """
        try:
            addresses = netpolicy.resolve(name, 0, self.allowed)
        except Blocked as exc:
            REFUSALS.add(name, str(exc))
            logger.info("network policy: %(reason)s", {"reason": str(exc)})
            raise DNSLookupError(str(exc)) from None
        except (OSError, UnicodeError) as exc:
            REFUSALS.discard(name)
            raise DNSLookupError(f"{name}: {exc}") from None
        REFUSALS.discard(name)
        return addresses

    def _addresses(self, name: str) -> defer.Deferred[list[str]]:
        cached = self._cache.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return defer.succeed(cached[1])
        d: defer.Deferred[list[str]] = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.lookup, name
        )
        d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=_timed_out(name))
        if self.cache_s > 0:
            d.addCallback(self._remember, name)
        return d

    def _remember(self, addresses: list[str], name: str) -> list[str]:
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[name] = (time.monotonic() + self.cache_s, addresses)
        return addresses

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[Any]] | None = None,
        transportSemantics: str = "TCP",
    ) -> _Resolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        wanted = set(addressTypes or (IPv4Address, IPv6Address))

        def deliver(addresses: list[str]) -> None:
            for ip in addresses:
                kind = IPv6Address if ":" in ip else IPv4Address
                if kind in wanted:
                    resolutionReceiver.addressResolved(kind("TCP", ip, portNumber))

        def failed(failure: Any) -> None:
            failure.trap(DNSLookupError, defer.CancelledError, defer.TimeoutError)

        d = self._addresses(hostName)
        d.addCallbacks(deliver, failed)
        d.addBoth(lambda _: resolutionReceiver.resolutionComplete())
        return resolution

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:
        def first_ipv4(addresses: list[str]) -> str:
            ip = next((a for a in addresses if ":" not in a), None)
            if ip is None:
                raise DNSLookupError(f"{name}: no IPv4 address")
            return ip

        return self._addresses(name).addCallback(first_ipv4)


def _timed_out(name: str) -> Any:
    def raise_lookup_error(result: Any, timeout: float) -> Any:
        raise DNSLookupError(f"{name}: lookup timed out after {timeout:g}s")

    return raise_lookup_error
