"""Calls from one part to another: an httpx client that carries the request id and the trace.

Every client of a process verifies ``https://`` servers against one shared TLS context
(:func:`tls_context`, certifi's CA bundle as httpx's default), made when a first ``https://``
request needs it: a part calling only ``http://127.0.0.1`` never loads the bundle (≈ 1.8 MB for
a first context, ≈ 0.8 MB for each further one an ``httpx.AsyncClient`` would make).
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from opentelemetry import propagate

from libs.common.context import current_request_id
from libs.common.middleware import REQUEST_ID_HEADER

DEFAULT_TIMEOUT_S = 10.0

_tls: ssl.SSLContext | None = None
_no_trust: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The process's TLS context for ``https://`` calls (certificate and host name verified
    against certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as httpx reads them);
    made on first use, then shared by every client."""
    global _tls
    if _tls is None:
        _tls = httpx.create_ssl_context()
    return _tls


def _trusting_nothing() -> ssl.SSLContext:
    """A context for transports that serve ``http://`` only: it verifies, with no CA to trust,
    so a TLS connection through it could only fail (httpx's transports want a context)."""
    global _no_trust
    if _no_trust is None:
        _no_trust = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _no_trust


TransportFactory = Callable[[ssl.SSLContext], httpx.AsyncBaseTransport]


def _http_transport(**options: Any) -> TransportFactory:
    return lambda context: httpx.AsyncHTTPTransport(verify=context, **options)


class LazyTLSTransport(httpx.AsyncBaseTransport):
    """httpx's transport made per scheme on first use: ``https://`` requests go through one
    made with :func:`tls_context`, ``http://`` ones through one whose context trusts nothing
    (it never speaks TLS). ``make`` builds a transport for a context (default: httpx's
    ``AsyncHTTPTransport`` with ``options``)."""

    def __init__(self, make: TransportFactory | None = None, **options: Any) -> None:
        self._make = make or _http_transport(**options)
        self._plain: httpx.AsyncBaseTransport | None = None
        self._tls: httpx.AsyncBaseTransport | None = None

    def for_scheme(self, scheme: str) -> httpx.AsyncBaseTransport:
        """The transport a request of ``scheme`` goes through (made when first asked for)."""
        if scheme == "https":
            if self._tls is None:
                self._tls = self._make(tls_context())
            return self._tls
        if self._plain is None:
            self._plain = self._make(_trusting_nothing())
        return self._plain

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.for_scheme(request.url.scheme).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                await transport.aclose()


def client_options(**options: Any) -> dict[str, Any]:
    """``httpx.AsyncClient`` arguments for verifying through :func:`tls_context`: a
    :class:`LazyTLSTransport` (``options`` for its ``AsyncHTTPTransport``s), or, when the
    environment names a proxy (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``: httpx only
    routes through one when it makes the transports itself), httpx's own transports with the
    shared context, made now."""
    if any(urllib.request.getproxies().get(s) for s in ("http", "https", "all")):
        return {"verify": tls_context(), **options}
    return {"transport": LazyTLSTransport(**options)}


async def _propagate_request_context(request: httpx.Request) -> None:
    """Carry the current request's id and trace context onto an outgoing request."""
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id
    # On a real network transport the httpx instrumentation replaces this traceparent with its
    # client span's; other transports (ASGITransport between parts in one process) keep ours.
    if "traceparent" not in request.headers:
        propagate.inject(request.headers)


def service_client(
    base_url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A client for the part at ``base_url`` that forwards X-Request-ID and traceparent."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        event_hooks={"request": [_propagate_request_context]},
        **({"transport": transport} if transport is not None else client_options()),
    )
