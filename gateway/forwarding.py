"""The forwarded path in one layer: request id, body limit, CORS, the edge, trace context, proxy,
then one access-log line and the metrics.

Every part's ``RequestContextMiddleware`` and OpenTelemetry's instrumentation do the same for the
parts' own endpoints, one ASGI layer each, each wrapping ``send``; on the gateway's hot path that
layering cost more than the forwarding itself. Here the request's head is read once (``Exchange``),
one wrapper adds the gateway's response fields, and the metric children are looked up once per
label set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.guard import EdgeGuard, problem_for
from gateway.exchange import Exchange
from gateway.proxy import Proxy
from gateway.routes import Route
from libs.common.context import reset_request_id, set_request_id
from libs.common.errors import PayloadTooLarge, PingtaiError, problem_response
from libs.common.middleware import RequestMetrics
from libs.common.telemetry import new_span_id, new_trace_id, records_spans

access_log = structlog.get_logger("pingtai.access")
tracer = trace.get_tracer("pingtai.gateway")
_EXCHANGE = "pingtai.exchange"


class Forwarder:
    """The ASGI app of every forwarded route (``scope["route"]`` set by the dispatcher).

    In order: the request id (the caller's when well-formed, else a new one; sent upstream and
    back), the gateway-wide body limit by ``Content-Length`` (413), the route's CORS (preflights
    answered here), the edge (``EdgeGuard``), a 404 problem where no part is published, else the
    proxy. Around it all: the server span while spans are recorded (an exporter is configured),
    else only the trace context (the caller's trace continued, a span id of the gateway's own),
    which costs microseconds; a 500 problem for anything unexpected; then the metrics and one
    access-log line.
    """

    def __init__(
        self,
        proxy: Proxy,
        guard: EdgeGuard,
        *,
        part: str,
        max_body_bytes: int,
        cors_origins: Sequence[str],
        access_log: str = "all",
        access_log_slow_ms: float = 1000.0,
    ) -> None:
        self.proxy = proxy
        self.guard = guard
        self.part = part
        self.max_body_bytes = max_body_bytes
        self.default_origins = tuple(cors_origins)
        self._cors: dict[tuple[str, ...], ASGIApp] = {}
        self.metrics = RequestMetrics(part)
        self.access_log = access_log
        self.access_log_slow_s = access_log_slow_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, scope["route"], send)
        scope[_EXCHANGE] = exchange
        if records_spans():
            await self._traced(scope, receive, exchange)
            return
        token = otel_context.attach(_trace_context(exchange.trace_carrier))
        try:
            await self._handle(scope, receive, exchange)
        finally:
            otel_context.detach(token)

    async def _traced(self, scope: Scope, receive: Receive, exchange: Exchange) -> None:
        route = exchange.route
        method: str = scope["method"]
        carrier = exchange.trace_carrier
        with tracer.start_as_current_span(
            f"{method} {route.path}",
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route.path,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "pingtai.upstream": route.target or "",
            },
        ) as span:
            await self._handle(scope, receive, exchange)
            span.set_attribute("http.response.status_code", exchange.status)

    async def _handle(self, scope: Scope, receive: Receive, exchange: Exchange) -> None:
        """Inside the trace context: serve, then measure and log (with the trace id)."""
        id_token = set_request_id(exchange.request_id)
        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self._serve(scope, receive, exchange)
        except Exception:
            if exchange.started:
                raise
            # The last resort: a problem document with the request id, never a stack trace.
            access_log.exception("unhandled_error", path=scope["path"])
            await problem_response(
                500,
                code="internal-error",
                detail="Something went wrong on our side. Quote the request id when you report it.",
            )(scope, receive, exchange.send)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_flight.dec()
            self.metrics.record(scope["method"], exchange.route.path, exchange.status, elapsed)
            self.guard.count(exchange)
            if self.access_log == "all" or (
                self.access_log == "errors"
                and (exchange.status >= 400 or elapsed >= self.access_log_slow_s)
            ):
                self._log(scope, exchange, elapsed)
            reset_request_id(id_token)

    async def _serve(self, scope: Scope, receive: Receive, exchange: Exchange) -> None:
        length = exchange.content_length
        if length is not None and length > self.max_body_bytes:
            await problem_response(
                413,
                code="payload-too-large",
                detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            )(scope, receive, exchange.send)
            return
        if exchange.has_body:
            receive = self._limited(receive, exchange.route)
        origins = exchange.route.policy.cors_origins
        if origins is None:
            origins = self.default_origins
        if origins:
            await self._cors_for(origins)(scope, receive, exchange.send)
        else:
            await self._admit_and_forward(scope, receive, exchange.send)

    async def _admit_and_forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Behind CORS (whose ``send`` adds its fields): the edge, then the part or a 404."""
        exchange: Exchange = scope[_EXCHANGE]
        try:
            await self.guard.admit(scope, exchange)
        except PingtaiError as exc:
            await problem_for(exc)(scope, receive, send)
            return
        route = exchange.route
        if route.target is None:
            await problem_response(
                404, code="not-found", detail=f"No API is published at {scope['path']}."
            )(scope, receive, send)
            return
        await self.proxy.forward(route, scope, receive, send, has_body=exchange.has_body)

    def _cors_for(self, origins: tuple[str, ...]) -> ASGIApp:
        wrapped = self._cors.get(origins)
        if wrapped is None:
            wrapped = CORSMiddleware(
                self._admit_and_forward, allow_origins=origins, allow_methods=["*"],
                allow_headers=["*"],
            )  # fmt: skip
            self._cors[origins] = wrapped
        return wrapped

    def _limited(self, receive: Receive, route: Route) -> Receive:
        """``receive`` refusing a streamed body beyond the route's or the gateway's limit."""
        limit = self.max_body_bytes
        if route.policy.max_body_bytes is not None:
            limit = min(limit, route.policy.max_body_bytes)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            return message

        return limited

    def _log(self, scope: Scope, exchange: Exchange, elapsed: float) -> None:
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "route": exchange.route.path,
            "status": exchange.status,
            "duration_ms": round(elapsed * 1000, 2),
            "client": client[0] if client else "",
        }
        grant = exchange.grant
        if grant is not None:
            fields["app"] = grant.application_id
            fields["key"] = grant.key_id
            fields["org"] = grant.org_id
        principal = exchange.principal
        if principal is not None:
            fields["client_id"] = principal.client_id
            fields["sub"] = principal.sub
        access_log.info("request", **fields)


def _trace_context(carrier: dict[str, str] | None) -> otel_context.Context:
    """What the server span would carry when it records nothing: the caller's trace (or a new
    one) and a span id of this request's own, so log lines have a ``trace_id`` and the part
    gets a ``traceparent`` whose parent is the gateway."""
    parent = propagate.extract(carrier) if carrier else otel_context.Context()
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid:
        trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
    else:
        trace_id, flags, state = new_trace_id(), TraceFlags(TraceFlags.DEFAULT), None
    span = SpanContext(
        trace_id, new_span_id(), is_remote=False, trace_flags=flags, trace_state=state
    )
    return trace.set_span_in_context(NonRecordingSpan(span), parent)
