"""Where webhooks may go: http(s) only, and no private addresses in production (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


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


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_destination(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a private, loopback or link-local address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError:
        raise RefusedUrl(f"the host {host!r} does not resolve") from None
    addresses = {info[4][0] for info in infos}
    private = sorted(a for a in addresses if not _is_public(str(a)))
    if private:
        raise RefusedUrl(
            f"the host {host!r} resolves to a non-public address ({private[0]}); an operator "
            "may allow such addresses with PINGTAI_WORKFLOW_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"
        )
