"""Calls from one part to another: an httpx client that carries the request id and the trace."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from opentelemetry import propagate

from libs.common.context import current_request_id
from libs.common.middleware import REQUEST_ID_HEADER

DEFAULT_TIMEOUT_S = 10.0


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
        transport=transport,
        event_hooks={"request": [_propagate_request_context]},
    )
