"""Forward one request to a part and stream its answer back, on pooled aiohttp sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

import aiohttp
import structlog
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from gateway.edge.breaker import CircuitBreaker
from gateway.routes import Route
from gateway.settings import GatewaySettings
from libs.common.context import current_request_id
from libs.common.errors import PingtaiError, problem_response
from libs.common.health import ReadinessCheck

log = structlog.get_logger("pingtai.gateway")

# RFC 9110 §7.6.1 hop-by-hop fields, plus the non-standard ones proxies drop too. Every
# Proxy-* field is hop-by-hop as well; fields named in Connection are added per message.
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Request fields the gateway sets itself (or, for Expect, that uvicorn already answered).
_REPLACED_ON_REQUEST: frozenset[bytes] = frozenset(
    {
        b"host",
        b"expect",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-prefix",
    }
)
# Response fields the gateway's own server and middleware set (nginx hides Date and Server
# too); x-request-id comes back once, from RequestContextMiddleware, with the same value.
_REPLACED_ON_RESPONSE: frozenset[bytes] = frozenset({b"date", b"server", b"x-request-id"})
_DROPPED_ON_RESPONSE: frozenset[bytes] = HOP_BY_HOP | _REPLACED_ON_RESPONSE
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_HEALTH_TIMEOUT_S = 1.5
# A response body with a Content-Length up to this is read whole and sent in one message (it is
# in aiohttp's buffer already, or nearly); a longer one, or one without a length, streams.
SMALL_BODY_BYTES = 64 * 1024
# RFC 9110 §9.2.2; only these are retried, and only without a body (a stream is not replayable).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """The field names a message's Connection header declares hop-by-hop."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


_TRACE_FIELDS: frozenset[bytes] = frozenset({b"traceparent", b"tracestate", b"baggage"})
# Every request field looked at by name; the others are copied as they are.
_SPECIAL_ON_REQUEST: frozenset[bytes] = HOP_BY_HOP | _REPLACED_ON_REQUEST | _TRACE_FIELDS


def request_headers(
    scope: Scope,
    route: Route,
    request_id: str | None,
    trace_fields: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The headers to send upstream: the client's minus hop-by-hop ones, plus X-Forwarded-*,
    ``X-Request-ID`` and ``trace_fields`` (``traceparent``... replacing the client's).

    ASGI hands the field names over lower-cased; one pass over them.
    """
    trace_fields = trace_fields or {}
    out: list[tuple[str, str]] = []
    host = ""
    forwarded_for = ""
    connection: list[bytes] = []
    for name, raw_value in scope["headers"]:
        if name in _SPECIAL_ON_REQUEST:
            if name == b"host":
                host = raw_value.decode("latin-1")
            elif name == b"x-forwarded-for":
                value = raw_value.decode("latin-1").strip()
                forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
            elif name == b"connection":
                connection.append(raw_value)
            elif name in _TRACE_FIELDS and name.decode() not in trace_fields:
                out.append((name.decode(), raw_value.decode("latin-1")))
            continue
        if name.startswith(b"proxy-"):
            continue
        out.append((name.decode("latin-1"), raw_value.decode("latin-1")))
    if connection:
        declared = {
            t.decode("latin-1") for t in _connection_tokens((b"connection", v) for v in connection)
        }
        out = [(n, v) for n, v in out if n not in declared]
    client = scope.get("client")
    if client:
        # Appended, as nginx does: a part trusts only the last hop (uvicorn's
        # forwarded_allow_ips). When uvicorn already took the client from a trusted proxy's
        # X-Forwarded-For, that client is the last entry and is not repeated.
        peer = str(client[0])
        if not forwarded_for:
            forwarded_for = peer
        elif forwarded_for.rsplit(",", 1)[-1].strip() != peer:
            forwarded_for = f"{forwarded_for}, {peer}"
    if forwarded_for:
        out.append(("x-forwarded-for", forwarded_for))
    out.append(("x-forwarded-proto", str(scope.get("scheme", "http"))))
    if host:
        out.append(("x-forwarded-host", host))
    if route.strip_prefix:
        out.append(("x-forwarded-prefix", route.mount))
    if request_id:
        out.append(("x-request-id", request_id))
    out.extend(trace_fields.items())
    return out


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones and those the gateway sets."""
    out: list[tuple[bytes, bytes]] = []
    declared: set[bytes] | None = None
    for raw_name, value in raw:
        name = raw_name.lower()
        if name in _DROPPED_ON_RESPONSE or name.startswith(b"proxy-"):
            if name == b"connection":
                declared = _connection_tokens([(name, value)]) | (declared or set())
            continue
        out.append((name, value))
    if declared:
        out = [(n, v) for n, v in out if n not in declared]
    return out


def trace_fields() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``, ``baggage``) of the current span; empty without a
    valid span, and the client's own fields then pass unchanged."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def upstream_path(scope: Scope, route: Route) -> str:
    """The percent-encoded path (and query) to ask the upstream for."""
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else _quote(scope["path"])
    if route.strip_prefix:
        prefix = route.mount
        if path == prefix or path.startswith(f"{prefix}/"):
            path = path[len(prefix) :]
        else:  # the prefix itself was percent-encoded: rebuild from the decoded path
            path = _quote(scope["path"][len(prefix) :])
        path = path or "/"
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _quote(path: str) -> str:
    return URL.build(path=path).raw_path


class _RequestBody:
    """The client's body as an async iterator over ASGI ``receive``, never held in memory.

    Remembers why it stopped early (the body limit, the client leaving) so the caller can
    answer with the right problem instead of aiohttp's wrapped error.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.error: Exception | None = None
        self.disconnected = False
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                message = await self._receive()
            except Exception as exc:  # the size limit of RequestContextMiddleware
                self.error = exc
                raise
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ConnectionResetError("the client left during the upload")
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.complete = True
                return


class UpstreamPool:
    """One pooled aiohttp session per part, opened in the app's lifespan, closed at shutdown."""

    def __init__(self, settings: GatewaySettings, parts: Iterable[str]) -> None:
        self.urls: dict[str, str] = {part: settings.upstreams[part] for part in parts}
        self._settings = settings
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self.retries = settings.upstream_retries
        self.breakers = {
            part: CircuitBreaker(
                part, failures=settings.breaker_failures, open_s=settings.breaker_open_s
            )
            for part in self.urls
        }

    @property
    def started(self) -> bool:
        return bool(self._sessions)

    def _new_session(self, part: str) -> aiohttp.ClientSession:
        settings = self._settings
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_pool_size,
            keepalive_timeout=settings.upstream_keepalive_s,
            ttl_dns_cache=60,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.upstream_connect_timeout_s,
                sock_read=settings.read_timeout_s(part),
            ),
            # Bytes pass through as the part sent them; no cookie is ever kept between users.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            trust_env=False,
        )

    async def start(self) -> None:
        """Open the sessions; call inside a running event loop."""
        for part in self.urls:
            self._sessions[part] = self._new_session(part)

    async def close(self) -> None:
        """Close every session and its pooled connections."""
        sessions, self._sessions = self._sessions, {}
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """The app's lifespan hook: sessions live exactly as long as the app serves."""
        await self.start()
        try:
            yield
        finally:
            await self.close()

    def session(self, part: str) -> aiohttp.ClientSession:
        """The session for ``part``; RuntimeError before start-up."""
        try:
            return self._sessions[part]
        except KeyError:
            raise RuntimeError(f"the gateway is not started: no session for {part!r}") from None

    def readiness_checks(self) -> list[ReadinessCheck]:
        """A non-critical check per part: parts start in any order, the gateway stays ready."""
        return [
            ReadinessCheck(f"upstream:{part}", self._health_probe(part), critical=False)
            for part in self.urls
        ]

    def _health_probe(self, part: str) -> Callable[[], Awaitable[str | None]]:
        async def probe() -> str | None:
            url = URL(f"{self.urls[part]}/healthz", encoded=True)
            timeout = aiohttp.ClientTimeout(total=_HEALTH_TIMEOUT_S)
            async with self.session(part).get(url, timeout=timeout, allow_redirects=False) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{self.urls[part]}/healthz answered {r.status}")
            return self.urls[part]

        return probe


class Proxy:
    """Forwards requests to the parts of an ``UpstreamPool``."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool

    async def forward(
        self, route: Route, scope: Scope, receive: Receive, send: Send, *, has_body: bool
    ) -> None:
        """Send the request to ``route.target`` and stream its response back unchanged.

        The current span (the gateway's server span, or its trace context alone while spans
        are not recorded) becomes the parent in ``traceparent``.
        """
        part = route.target
        assert part is not None
        session = self.pool.session(part)
        method: str = scope["method"]
        url = URL(f"{self.pool.urls[part]}{upstream_path(scope, route)}", encoded=True)
        headers = request_headers(scope, route, current_request_id(), trace_fields())
        body = _RequestBody(receive) if has_body else None
        span = trace.get_current_span()
        recording = span.is_recording()
        breaker = self.pool.breakers[part]
        if not breaker.allow():
            if recording:
                span.set_status(Status(StatusCode.ERROR, "circuit open"))
            await _circuit_open(breaker, part)(scope, receive, send)
            return
        attempts = 1 + (self.pool.retries if body is None and method in IDEMPOTENT_METHODS else 0)
        for attempt in range(1, attempts + 1):
            try:
                upstream = await session.request(
                    method,
                    url,
                    headers=headers,
                    data=body.__aiter__() if body is not None else None,
                    allow_redirects=False,
                    compress=None,
                )
                break
            except Exception as exc:
                if attempt < attempts and _is_retryable(exc):
                    log.info("upstream_retry", upstream=part, attempt=attempt, error=repr(exc))
                    continue
                if body is not None and (body.error is not None or body.disconnected):
                    breaker.released()  # the client's doing, not the part's
                elif isinstance(exc, aiohttp.ClientError | TimeoutError):
                    breaker.failed()
                else:
                    breaker.released()
                if recording:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                await self._answer_failure(exc, body, part, scope, receive, send)
                return
        breaker.succeeded()
        status = upstream.status
        if recording and status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": response_headers(upstream.raw_headers),
                }
            )
            length = upstream.content_length
            if method == "HEAD" or length == 0:
                completed = await _relay(upstream, send, 0)
            elif length is not None and length <= SMALL_BODY_BYTES:
                # Already in aiohttp's buffer or about to be: one read, one message.
                await send({"type": "http.response.body", "body": await upstream.read()})
                completed = True
            elif length is not None:
                completed = await _relay(upstream, send, length)
            else:
                # An open-ended stream (server-sent events): stop when the client leaves, or
                # it would run as long as the part keeps talking.
                can_listen = body is None or body.complete
                completed = await _relay_until_disconnect(
                    upstream, send, receive if can_listen else None
                )
        except BaseException as exc:
            upstream.close()
            if isinstance(exc, aiohttp.ClientError | TimeoutError):
                # The head is sent: all that is left is to cut the connection short, so the
                # client sees an incomplete body instead of a truncated one that looks whole.
                log.warning("upstream_stream_broken", upstream=part, error=repr(exc))
            raise
        if completed:
            upstream.release()  # back to the pool
        else:
            upstream.close()  # the client left mid-body: this connection cannot be reused

    async def _answer_failure(
        self,
        exc: Exception,
        body: _RequestBody | None,
        part: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if body is not None and body.disconnected:
            return  # nobody to answer
        if body is not None and isinstance(body.error, PingtaiError):
            # Refused while reading the body (the forwarder's size limit).
            error = body.error
            response = problem_response(error.status, code=error.code, detail=error.detail)
        elif isinstance(exc, TimeoutError):
            log.warning("upstream_timeout", upstream=part, error=repr(exc))
            response = problem_response(
                504,
                code="upstream-timeout",
                title="The service did not answer in time",
                detail=f"The {part} service did not answer in time.",
                upstream=part,
            )
        elif isinstance(exc, aiohttp.ClientError):
            log.warning("upstream_unavailable", upstream=part, error=repr(exc))
            response = problem_response(
                502,
                code="upstream-unavailable",
                title="The service is unavailable",
                detail=f"The {part} service could not be reached.",
                upstream=part,
            )
        elif body is not None and body.error is not None:
            raise body.error from exc
        else:
            raise exc
        await response(scope, receive, send)


def _is_retryable(exc: Exception) -> bool:
    """A connection that failed before any answer: refused, reset, or closed by the part.

    Not a timeout: the part may still be working on the first attempt.
    """
    return isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(exc, TimeoutError)


def _circuit_open(breaker: CircuitBreaker, part: str) -> Response:
    return problem_response(
        503,
        code="upstream-circuit-open",
        title="The service is unavailable",
        detail=f"The {part} service is not answering; the gateway is holding requests back.",
        upstream=part,
        headers={"Retry-After": str(breaker.retry_after_s())},
    )


async def _relay(upstream: aiohttp.ClientResponse, send: Send, length: int | None = None) -> bool:
    """Copy the response body chunk by chunk as it arrives; True once all of it is sent.

    With a known ``length`` the last chunk carries ``more_body=False`` itself, which saves a
    message (and the middleware's work on it) per response.
    """
    remaining = length
    if remaining != 0:
        async for chunk in upstream.content.iter_any():
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    await send({"type": "http.response.body", "body": chunk})
                    return True
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    return True


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _relay_until_disconnect(
    upstream: aiohttp.ClientResponse, send: Send, receive: Receive | None
) -> bool:
    """``_relay``, cancelled when the client disconnects (if its body is fully read)."""
    if receive is None:
        return await _relay(upstream, send)
    relay = asyncio.ensure_future(_relay(upstream, send))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relay, watcher):
            task.cancel()
        await asyncio.gather(relay, watcher, return_exceptions=True)
    if relay.cancelled():
        return False  # the client left first
    failure = relay.exception()
    if failure is not None:
        raise failure
    return True
