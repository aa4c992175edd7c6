"""Forward one request to a part and stream its answer back, on pooled pyreqwest clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import NetworkError, RequestError
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response as UpstreamResponse
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
# Sent only when the client sent no User-Agent (reqwest adds one, and ``Accept: */*``, which means
# the same as no Accept at all).
USER_AGENT = "pingtai-gateway"
_HEALTH_TIMEOUT = timedelta(seconds=1.5)
# A response body with a Content-Length up to this is read whole and sent in one message (it is
# in the client's buffer already, or nearly); a longer one, or one without a length, streams.
SMALL_BODY_BYTES = 64 * 1024
# RFC 9110 §9.2.2; only these are retried, and only with a body that came whole in one message
# (a stream is not replayable).
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

    ASGI hands the field names over lower-cased; one pass over them. Values are decoded as
    UTF-8, which the client (pyreqwest) encodes them back to, so the bytes pass unchanged; a value
    that is not UTF-8 raises ``UnicodeDecodeError``.
    """
    trace_fields = trace_fields or {}
    out: list[tuple[str, str]] = []
    host = ""
    forwarded_for = ""
    connection: list[bytes] = []
    for name, raw_value in scope["headers"]:
        if name in _SPECIAL_ON_REQUEST:
            if name == b"host":
                host = raw_value.decode()
            elif name == b"x-forwarded-for":
                value = raw_value.decode().strip()
                forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
            elif name == b"connection":
                connection.append(raw_value)
            elif name in _TRACE_FIELDS and name.decode() not in trace_fields:
                out.append((name.decode(), raw_value.decode()))
            continue
        if name.startswith(b"proxy-"):
            continue
        out.append((name.decode("latin-1"), raw_value.decode()))
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


def response_headers(fields: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones and those the gateway sets."""
    out: list[tuple[bytes, bytes]] = []
    declared: set[bytes] | None = None
    for field_name, field_value in fields:
        name = field_name.lower().encode("latin-1")
        value = field_value.encode("latin-1")
        if name in _DROPPED_ON_RESPONSE or name.startswith(b"proxy-"):
            if name == b"connection":
                declared = _connection_tokens([(name, value)]) | (declared or set())
            continue
        out.append((name, value))
    if declared:
        out = [(n, v) for n, v in out if n not in declared]
    return out


def upstream_fields(headers: HeaderMap) -> list[tuple[str, str]]:
    """The fields of an upstream's response, in order.

    pyreqwest hands over only fields whose value is visible ASCII; a field with other bytes
    (obs-text, RFC 9110 §5.5) is left out and logged instead of failing the whole answer.
    """
    try:
        return list(headers.items())
    except ValueError:
        fields: list[tuple[str, str]] = []
        for name in dict.fromkeys(headers.keys()):
            try:
                fields.extend((name, value) for value in headers.getall(name))
            except ValueError:
                log.warning("upstream_header_dropped", header=name, reason="not visible ASCII")
        return fields


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

    ``start`` reads the first message before anything goes upstream: a body refused at once
    (a first chunk over the limit) never reaches the part, and a body that came whole in it is
    sent as bytes (cheaper than a stream, and replayable). Remembers why it stopped early (the
    body limit, the client leaving) so the caller can answer with the right problem instead of
    the client's wrapped error.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.first = b""
        self.error: Exception | None = None
        self.disconnected = False
        self.complete = False

    async def _read(self) -> bytes:
        try:
            message = await self._receive()
        except Exception as exc:  # the size limit of the forwarder or the edge
            self.error = exc
            raise
        if message["type"] == "http.disconnect":
            self.disconnected = True
            raise ConnectionResetError("the client left during the upload")
        if not message.get("more_body", False):
            self.complete = True
        chunk: bytes = message.get("body", b"")
        return chunk

    async def start(self) -> None:
        """Read the first message."""
        self.first = await self._read()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.first:
            yield self.first
        while not self.complete:
            chunk = await self._read()
            if chunk:
                yield chunk


class UpstreamPool:
    """One pooled pyreqwest client per part, opened in the app's lifespan, closed at shutdown.

    pyreqwest drives Rust's reqwest/hyper on a Tokio runtime thread of its own; a request costs
    the event loop about half of what aiohttp's does (docs/benchmarks.md, Gateway).
    """

    def __init__(self, settings: GatewaySettings, parts: Iterable[str]) -> None:
        self.urls: dict[str, str] = {part: settings.upstreams[part] for part in parts}
        self._settings = settings
        self._clients: dict[str, Client] = {}
        self.retries = settings.upstream_retries
        self.breakers = {
            part: CircuitBreaker(
                part, failures=settings.breaker_failures, open_s=settings.breaker_open_s
            )
            for part in self.urls
        }

    @property
    def started(self) -> bool:
        return bool(self._clients)

    def _new_client(self, part: str) -> Client:
        settings = self._settings
        return (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=settings.upstream_connect_timeout_s))
            # Per read, reset by each one: the longest silence, before the head and in the body.
            .read_timeout(timedelta(seconds=settings.read_timeout_s(part)))
            .max_connections(settings.upstream_pool_size)
            .pool_max_idle_per_host(settings.upstream_pool_size)
            .pool_idle_timeout(timedelta(seconds=settings.upstream_keepalive_s))
            # Bytes pass through as the part sent them: no decompression, no redirect followed,
            # no cookie kept between users (reqwest keeps none unless asked), no proxy from the
            # environment.
            .follow_redirects(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .no_proxy()
            .user_agent(USER_AGENT)
            .http1_lower_case_headers()
            .build()
        )

    async def start(self) -> None:
        """Open the clients; call inside a running event loop."""
        for part in self.urls:
            self._clients[part] = self._new_client(part)

    async def close(self) -> None:
        """Close every client and its pooled connections."""
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """The app's lifespan hook: clients live exactly as long as the app serves."""
        await self.start()
        try:
            yield
        finally:
            await self.close()

    def client(self, part: str) -> Client:
        """The client for ``part``; RuntimeError before start-up."""
        try:
            return self._clients[part]
        except KeyError:
            raise RuntimeError(f"the gateway is not started: no client for {part!r}") from None

    async def get(self, part: str, path: str, timeout: timedelta) -> UpstreamResponse:
        """A small GET to ``part`` itself (health, OpenAPI document), read whole."""
        request = self.client(part).get(f"{self.urls[part]}{path}").timeout(timeout)
        return await request.build().send()

    def readiness_checks(self) -> list[ReadinessCheck]:
        """A non-critical check per part: parts start in any order, the gateway stays ready."""
        return [
            ReadinessCheck(f"upstream:{part}", self._health_probe(part), critical=False)
            for part in self.urls
        ]

    def _health_probe(self, part: str) -> Callable[[], Awaitable[str | None]]:
        async def probe() -> str | None:
            response = await self.get(part, "/healthz", _HEALTH_TIMEOUT)
            if response.status != 200:
                raise RuntimeError(f"{self.urls[part]}/healthz answered {response.status}")
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
        path = upstream_path(scope, route)
        try:
            headers = request_headers(scope, route, current_request_id(), trace_fields())
        except UnicodeDecodeError:
            await _bad_request("A header field value is not UTF-8.")(scope, receive, send)
            return
        if _has_dot_segment(path):
            # The URL standard (which the client follows) would resolve it, possibly above the
            # part's base path; a browser never sends one.
            await _bad_request("The path has a '.' or '..' segment.")(scope, receive, send)
            return
        client = self.pool.client(part)
        method: str = scope["method"]
        url = f"{self.pool.urls[part]}{path}"
        body = _RequestBody(receive) if has_body else None
        span = trace.get_current_span()
        recording = span.is_recording()
        breaker = self.pool.breakers[part]
        if not breaker.allow():
            if recording:
                span.set_status(Status(StatusCode.ERROR, "circuit open"))
            await _circuit_open(breaker, part)(scope, receive, send)
            return
        if body is not None:
            try:
                await body.start()
            except Exception as exc:
                breaker.released()
                await self._answer_failure(exc, body, part, scope, receive, send)
                return
        replayable = body is None or body.complete
        attempts = 1 + (self.pool.retries if replayable and method in IDEMPOTENT_METHODS else 0)
        for attempt in range(1, attempts + 1):
            # Nothing buffered ahead of the reader: a server-sent event goes on as it arrives.
            builder = client.request(method, url).headers(headers).streamed_read_buffer_limit(0)
            if body is not None:
                builder = (
                    builder.body_bytes(body.first) if body.complete else builder.body_stream(body)
                )
            request = builder.build_streamed()
            try:
                upstream = await request.__aenter__()
                break
            except Exception as exc:
                if attempt < attempts and _is_retryable(exc):
                    log.info("upstream_retry", upstream=part, attempt=attempt, error=repr(exc))
                    continue
                if body is not None and (body.error is not None or body.disconnected):
                    breaker.released()  # the client's doing, not the part's
                elif isinstance(exc, RequestError):
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
                    "headers": response_headers(upstream_fields(upstream.headers)),
                }
            )
            reader = upstream.body_reader
            content_length = upstream.headers.get("content-length")
            length = int(content_length) if content_length is not None else None
            if method == "HEAD" or length == 0:
                await send({"type": "http.response.body", "body": b""})
            elif length is not None and length <= SMALL_BODY_BYTES:
                # One read, one message.
                chunk = await reader.bytes()
                await send({"type": "http.response.body", "body": chunk.to_bytes()})
            elif length is not None:
                await _relay(upstream, send, length)
            else:
                # An open-ended stream (server-sent events): stop when the client leaves, or
                # it would run as long as the part keeps talking.
                can_listen = body is None or body.complete
                await _relay_until_disconnect(upstream, send, receive if can_listen else None)
        except BaseException as exc:
            if isinstance(exc, RequestError):
                # The head is sent: all that is left is to cut the connection short, so the
                # client sees an incomplete body instead of a truncated one that looks whole.
                log.warning("upstream_stream_broken", upstream=part, error=repr(exc))
            raise
        finally:
            # Back to the pool once the body was read to its end; closed otherwise (the client
            # left mid-body, or the part broke it off).
            await request.__aexit__(None, None, None)

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
        elif isinstance(exc, RequestError):
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


_DOT_SEGMENTS = frozenset({".", "..", "%2e", "%2e%2e", ".%2e", "%2e."})


def _has_dot_segment(path: str) -> bool:
    """Whether the path (before its query) has a segment the URL standard resolves away."""
    path = path.partition("?")[0].lower()
    if "/." not in path and "/%2e" not in path and "\\" not in path:
        return False
    return any(segment in _DOT_SEGMENTS for segment in path.replace("\\", "/").split("/"))


def _is_retryable(exc: Exception) -> bool:
    """A connection that failed before any answer: refused, reset, or closed by the part.

    Not a timeout: the part may still be working on the first attempt.
    """
    return isinstance(exc, NetworkError) and not isinstance(exc, TimeoutError)


def _bad_request(detail: str) -> Response:
    return problem_response(400, code="bad-request", title="Bad request", detail=detail)


def _circuit_open(breaker: CircuitBreaker, part: str) -> Response:
    return problem_response(
        503,
        code="upstream-circuit-open",
        title="The service is unavailable",
        detail=f"The {part} service is not answering; the gateway is holding requests back.",
        upstream=part,
        headers={"Retry-After": str(breaker.retry_after_s())},
    )


async def _relay(upstream: UpstreamResponse, send: Send, length: int | None = None) -> None:
    """Copy the response body chunk by chunk as it arrives.

    With a known ``length`` the last chunk carries ``more_body=False`` itself, which saves a
    message (and the middleware's work on it) per response.
    """
    reader = upstream.body_reader
    remaining = length
    while (chunk := await reader.read_chunk()) is not None:
        data = chunk.to_bytes()
        if remaining is not None:
            remaining -= len(data)
            if remaining <= 0:
                await send({"type": "http.response.body", "body": data})
                return
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _relay_until_disconnect(
    upstream: UpstreamResponse, send: Send, receive: Receive | None
) -> None:
    """``_relay``, cancelled when the client disconnects (if its body is fully read)."""
    if receive is None:
        await _relay(upstream, send)
        return
    relay = asyncio.ensure_future(_relay(upstream, send))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relay, watcher):
            task.cancel()
        await asyncio.gather(relay, watcher, return_exceptions=True)
    if relay.cancelled():
        return  # the client left first
    failure = relay.exception()
    if failure is not None:
        raise failure
