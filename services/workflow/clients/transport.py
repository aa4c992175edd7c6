"""How workflow posts JSON to exchange: aiohttp's client in production, httpx where a test
routes requests in process.

Measured here (bench/bench_workflow.py, ``PINGTAI_WORKFLOW_EXCHANGE_HTTP_CLIENT``), httpx's
pool costs more CPU per request than the rest of a submission, and degrades with many
requests in flight; aiohttp's keeps one pooled connection per concurrent request to exchange
at a fraction of the cost. Both forward ``X-Request-ID`` and ``traceparent``. aiohttp's sends
a request once more, on another connection, when its body could not be written to a reused
keep-alive connection (exchange never received it; ``_body_unsent``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from opentelemetry import propagate

from libs.common.context import current_request_id
from libs.common.middleware import REQUEST_ID_HEADER

# Connections kept to exchange (one per request in flight; a bundle asks four at once).
POOL_SIZE = 128
# Idle connections are dropped before the server's own keep-alive timeout (uvicorn: 5 s) so a
# request is not written to a connection the server is closing.
KEEPALIVE_S = 3.0


class ExchangeUnreachable(Exception):
    """No answer from exchange: connection refused or reset, timeout."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Exchange's answer: its status and JSON body (None when the body is not JSON)."""

    status: int
    body: Any
    text: str


class JsonPoster(Protocol):
    """POSTs a JSON body to a path of exchange's API."""

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer: ...

    async def close(self) -> None: ...


def _context_headers(headers: dict[str, str]) -> dict[str, str]:
    """The request id and the trace context of the request being served, added."""
    out = dict(headers)
    request_id = current_request_id()
    if request_id:
        out[REQUEST_ID_HEADER] = request_id
    propagate.inject(out)
    return out


def _answer(status: int, text: str) -> Answer:
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return Answer(status, body, text)


class AiohttpPoster:
    """aiohttp's pooled client (made on first use, inside the running loop)."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        url, sent_headers = self._base_url + path, _context_headers(headers)
        for attempt in range(2):
            try:
                async with self._client().post(url, json=body, headers=sent_headers) as response:
                    return _answer(response.status, await response.text())
            except aiohttp.ClientOSError as exc:
                if attempt == 0 and _body_unsent(exc):
                    continue  # exchange never had the request: once more, on another connection
                raise ExchangeUnreachable(repr(exc)) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ExchangeUnreachable(repr(exc)) from exc
        # The loop answers, raises, or continues once to its second and last attempt.
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _body_unsent(exc: aiohttp.ClientOSError) -> bool:
    """Whether aiohttp failed to write the request's body: a pooled keep-alive connection the
    server closed meanwhile (its keep-alive timeout), found only when written to. The request
    never reached exchange whole, so sending it again cannot read (or record in the ledger)
    anything twice; a failure after the body was sent (no answer, a reset while reading) is
    not retried, since exchange may have served it."""
    return (exc.strerror or "").startswith("Can not write request body")


class HttpxPoster:
    """An httpx client (tests route it to an app in process, or to a mock)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._http = client

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        try:
            response = await self._http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ExchangeUnreachable(repr(exc)) from exc
        return _answer(response.status_code, response.text)

    async def close(self) -> None:
        await self._http.aclose()
