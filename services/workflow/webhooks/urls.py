"""Where webhooks may go: http(s) only, and no private addresses in production (SSRF).

The name is resolved once per connection, the addresses checked, and the connection made to a
checked address (``PinnedBackend``): resolving again to connect would let a name answer a
public address to the check and a private one to the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from libs.common.http import LazyTLSTransport


class RefusedUrl(ValueError):
    """A webhook URL the platform will not call."""


def check_form(url: str) -> str:
    """Refuse what is not an absolute http(s) URL with a host and no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("must be an http:// or https:// URL")
    if not parts.hostname:
        raise RefusedUrl("must name a host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("must not carry credentials")
    if parts.fragment:
        raise RefusedUrl("must not have a fragment")
    try:
        _ = parts.port
    except ValueError:
        raise RefusedUrl("has an invalid port") from None
    return url


# NAT64 prefixes: the well-known one carries an IPv4 address in its last 32 bits; the
# local-use one (RFC 8215) is never a public destination.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: mapped, 6to4, Teredo, NAT64, and the
    deprecated IPv4-compatible form (``::a.b.c.d``)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or int(ip) < 2**32:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        # A mapped address is judged by its IPv4 alone (Python calls ::ffff:0:0/96 not global).
        candidates = [*embedded] if ip.ipv4_mapped is not None else [ip, *embedded]
    return all(c.is_global and not c.is_multicast for c in candidates)


async def resolve(host: str, port: int, *, check: bool) -> list[str]:
    """The addresses ``host`` resolves to, once; with ``check``, RefusedUrl if any of them is
    private, loopback, link-local or an IPv6 form of such an IPv4 address."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise RefusedUrl(f"the host {host!r} does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    private = sorted(a for a in addresses if not _is_public(a)) if check else []
    if private:
        raise RefusedUrl(
            f"the host {host!r} resolves to a non-public address ({private[0]}); an operator "
            "may allow such addresses with PINGTAI_WORKFLOW_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"
        )
    return addresses


async def check_destination(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a private, loopback or link-local address."""
    parts = urlsplit(url)
    await resolve(
        parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), check=True
    )


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the very address it resolved and checked (DNS rebinding: a name answering
    a public address to the check and a private one to the connection). The request keeps the
    URL's host in its Host header and TLS server name: only the TCP connection is pinned."""

    def __init__(self, *, check: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._check = check

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await resolve(host, port, check=self._check):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedUrl("webhooks go over TCP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_client(*, timeout_s: float, check: bool) -> httpx.AsyncClient:
    """An HTTP client whose connections go to checked addresses only (no proxies from the
    environment, no redirects); ``https://`` deliveries verify through the process's one TLS
    context, made at the first of them."""

    def pinned(context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
        # httpx takes no network backend: its pool is replaced by the same pool with ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=PinnedBackend(check=check)
        )
        return transport

    return httpx.AsyncClient(
        transport=LazyTLSTransport(pinned),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
