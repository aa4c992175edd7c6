"""Telemetry: OpenTelemetry traces, structlog JSON logs, Prometheus metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY, _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, NoOpTracer, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.context import current_request_id

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.util.http import ExcludeList
    from opentelemetry.util.types import Attributes

HTTP_REQUESTS = Counter(
    "pingtai_http_requests_total",
    "HTTP requests served, by route and status.",
    ["part", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "pingtai_http_request_duration_seconds",
    "Time to serve an HTTP request, by route.",
    ["part", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("pingtai_http_requests_in_flight", "HTTP requests being served.", ["part"])

_tracing_configured = False


def _add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    request_id = current_request_id()
    if request_id:
        event.setdefault("request_id", request_id)
    return event


def configure_logging(*, part: str, level: str = "INFO", fmt: str = "json") -> None:
    """JSON (or console) logs on stdout, each line carrying ``trace_id`` and ``request_id``."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_context,
    ]
    renderer: Any = _JSON_RENDERER if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    # Records of the standard library's loggers (uvicorn, SQLAlchemy, ...) are rendered the same
    # way by the root handler.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    processors = [
        # Drop lines below the level before any processor runs (access logs of probes, debug),
        # as the standard logger of the same name would.
        structlog.stdlib.filter_by_level,
        *shared,
        structlog.processors.format_exc_info,
        renderer,
    ]
    global _direct_chain
    _direct_chain = tuple(processors) if fmt == "json" else ()
    structlog.configure(
        processors=processors,
        # Rendered lines go straight to the root handler's stream: through the standard
        # library (two LogRecords and a formatter per line) the access log cost ~48 µs a line.
        logger_factory=_HandlerLoggerFactory(handler),
        wrapper_class=_BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(part=part)
    # uvicorn's own access log is replaced by ours (one line per request, in JSON).
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request at INFO; our own middleware already logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _json_fallback(obj: Any) -> Any:
    # As structlog's JSONRenderer: an object's ``__structlog__()``, else its ``repr``.
    try:
        return obj.__structlog__()
    except AttributeError:
        return repr(obj)


_JSON_RENDERER = structlog.processors.JSONRenderer(default=_json_fallback)
# ``json.dumps(..., default=...)`` builds an encoder per call; the same encoder, built once.
_encode_json = json.JSONEncoder(default=_json_fallback).encode
# The JSON chain ``configure_logging`` installed, while it is the configured one.
_direct_chain: tuple[Any, ...] = ()


class _Timestamps:
    """``datetime.now(UTC).isoformat()`` with ``Z`` for ``+00:00`` (structlog's ISO stamp in
    UTC), the date and time formatted once a second."""

    def __init__(self) -> None:
        # One tuple, replaced whole: threads never see one second's prefix with another's.
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> str:
        """The current time, as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it."""
        return self.format(time.time_ns())

    def format(self, ns: int) -> str:
        """``ns`` (nanoseconds since the epoch) to the microsecond, as ``now`` writes it."""
        second, micro = divmod(ns // 1000, 1_000_000)
        cached, prefix = self._second
        if second != cached:
            prefix = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
            self._second = (second, prefix)
        # isoformat leaves the fraction out when it is zero.
        return f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"


_timestamps = _Timestamps()


class _BoundLogger(structlog.stdlib.BoundLogger):
    """structlog's standard-library logger, with ``info`` and ``debug`` (the access line, once
    per request) rendered directly while the configured chain is ``configure_logging``'s JSON
    one: the same fields in the same order, the same JSON text, for ≈ 11 µs of CPU an access
    line instead of ≈ 17-19 µs through the chain (about 4 µs of either is the write and flush).
    Anything else (positional arguments, ``exc_info``, another chain, e.g.
    ``structlog.testing.capture_logs``) goes through the chain."""

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if args or "exc_info" in kw or tuple(self._processors) != _direct_chain:
            return self._proxy_to_logger("info", event, *args, **kw)
        return self._direct(logging.INFO, "info", event, kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if args or "exc_info" in kw or tuple(self._processors) != _direct_chain:
            return self._proxy_to_logger("debug", event, *args, **kw)
        return self._direct(logging.DEBUG, "debug", event, kw)

    def _direct(self, level: int, method: str, event: str | None, kw: dict[str, Any]) -> Any:
        wrapped = self._logger
        if not isinstance(wrapped, _HandlerLogger):  # another logger factory configured since
            return self._proxy_to_logger(method, event, **kw)
        standard = wrapped.standard
        # filter_by_level
        if standard.disabled or level < standard.getEffectiveLevel():
            return None
        event_dict: dict[str, Any] = self._context.copy()
        event_dict.update(kw)
        if event is not None:
            event_dict["event"] = event
        # merge_contextvars, add_log_level, add_logger_name, TimeStamper, _add_trace_context
        for key, value in structlog.contextvars.get_contextvars().items():
            event_dict.setdefault(key, value)
        event_dict["level"] = method
        event_dict["logger"] = wrapped.name
        event_dict["timestamp"] = _timestamps.now()
        _add_trace_context(None, method, event_dict)
        return wrapped.write(_encode_json(event_dict))


class _HandlerLogger:
    """What structlog's stdlib ``BoundLogger`` wraps: levels and name from the standard
    logger of the same name, rendered lines written to ``handler``'s stream as it would."""

    def __init__(self, logger: logging.Logger, handler: logging.StreamHandler[Any]) -> None:
        self.standard = logger
        self._handler = handler
        self.name = logger.name

    def __getattr__(self, name: str) -> Any:
        # Levels, ``disabled``, handlers...: the standard logger's.
        return getattr(self.standard, name)

    def write(self, line: str, *_args: Any, **_kwargs: Any) -> None:
        """Write ``line`` and a line end to the handler's stream, with the OS once this returns
        (as a flush after each line did): a line logged is not lost if the process is killed."""
        handler = self._handler
        with handler.lock or contextlib.nullcontext():
            stream = handler.stream
            stream.write(line + handler.terminator)
            stream.flush()

    debug = info = warning = warn = error = critical = fatal = exception = msg = write

    def log(self, _level: int, line: str, *args: Any, **kwargs: Any) -> None:
        """Write ``line`` (the level was checked already)."""
        self.write(line)


class _HandlerLoggerFactory:
    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler
        # Names loggers as structlog's stdlib factory does (a nameless one after its module).
        self._stdlib = structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__])

    def __call__(self, *args: Any) -> _HandlerLogger:
        return _HandlerLogger(self._stdlib(*args), self.handler)


def spans_wanted() -> bool:
    """Whether the environment asks for spans: an OTLP endpoint to export them to
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or a sampler
    (``OTEL_TRACES_SAMPLER``)."""
    return _exporting() or bool(os.environ.get("OTEL_TRACES_SAMPLER"))


def _exporting() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_process_tracing(service_name: str) -> bool:
    """The process's tracing as the environment asks: OpenTelemetry's SDK
    (``configure_tracing``) when spans are wanted, else the trace context alone
    (``configure_trace_context``: the SDK and the instrumentations are never imported). Whether
    spans may be recorded now (False: a part built now is not instrumented; its requests keep
    the trace context even if ``configure_tracing`` installs the SDK later, as tests do).

    ``OTEL_SDK_DISABLED=true`` without an exporter or a sampler installs no tracer provider,
    as the SDK's disabled provider gave: every tracer the API's no-op one (its span the current
    one, no new ids), httpx requests carrying the current trace as it is."""
    if spans_wanted() or _tracing_configured:
        configure_tracing(service_name)
        return True
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        _carry_trace_context_on_httpx(client_spans=False)
        return False
    configure_trace_context()
    return not _context_only()


def configure_tracing(service_name: str) -> TracerProvider:
    """Install the process's SDK tracer provider once; export over OTLP only when configured.

    In a process that began with the trace context alone (``configure_trace_context``, e.g. a
    test process that built a part before), the SDK provider takes over from it: tracers start
    its spans; a part built before stays uninstrumented, its requests in their trace context."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    from libs.common import telemetry_sdk

    global _tracing_configured
    installed: object = trace.get_tracer_provider()
    context_only = installed if isinstance(installed, _ContextTracerProvider) else None
    if context_only is not None:
        installed = context_only.successor
    if _tracing_configured and isinstance(installed, TracerProvider):
        return installed
    provider = telemetry_sdk.tracer_provider(service_name, exporting=_exporting())
    if context_only is not None:
        # The API installs one provider per process; tracers already handed out by the
        # context's provider start the successor's spans from now on.
        context_only.successor = provider
    else:
        trace.set_tracer_provider(provider)
    _stop_carrying_trace_context_on_httpx()  # the instrumentation carries it from now on
    HTTPXClientInstrumentor().instrument()
    _tracing_configured = True
    return provider


def configure_trace_context() -> None:
    """Tracing without OpenTelemetry's SDK, for a process that records no spans: spans are the
    trace context alone (``_ContextTracer``: ids for the logs' ``trace_id`` and ``span_id``,
    a ``traceparent`` passed on), and every request httpx sends carries the current trace as
    OpenTelemetry's httpx instrumentation made it carry. Nothing if a tracer provider is
    installed already."""
    if _tracing_configured or isinstance(trace.get_tracer_provider(), _ContextTracerProvider):
        return
    provider = _ContextTracerProvider()
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is provider:  # not refused for another one installed before
        _carry_trace_context_on_httpx()


def _context_only() -> bool:
    provider = trace.get_tracer_provider()
    return isinstance(provider, _ContextTracerProvider) and provider.successor is None


def records_spans() -> bool:
    """Whether the process's tracer provider records spans now (something processes them)."""
    provider: object = trace.get_tracer_provider()
    if isinstance(provider, _ContextTracerProvider):
        provider = provider.successor
    if provider is None or "opentelemetry.sdk.trace" not in sys.modules:
        return False  # no SDK provider installed: every span is the trace context alone
    from libs.common import telemetry_sdk

    return telemetry_sdk.records_spans(provider)


def new_trace_id() -> int:
    """A random trace id, as the SDK's ``RandomIdGenerator`` makes them."""
    return _new_id(128)


def new_span_id() -> int:
    """A random span id, as the SDK's ``RandomIdGenerator`` makes them."""
    return _new_id(64)


def _child_span(context: otel_context.Context | None = None) -> NonRecordingSpan:
    """A span as the SDK's tracer starts it while its sampler records nothing: the trace of the
    current span in ``context`` (or a new one), a span id of its own, no trace state and flags
    from no parent's but the random-trace-id bit (set for a trace it starts, else the
    parent's): the SDK takes the rest from the sampler's decision."""
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid:
        trace_id = parent.trace_id
        flags = _RANDOM_FLAGS if parent.trace_flags.random_trace_id else _DEFAULT_FLAGS
    else:
        trace_id, flags = _new_id(128), _RANDOM_FLAGS
    return NonRecordingSpan(SpanContext(trace_id, _new_id(64), is_remote=False, trace_flags=flags))


class _ContextTracerProvider(trace.TracerProvider):
    """The tracer provider of a process without OpenTelemetry's SDK (``configure_trace_context``).
    An SDK provider ``configure_tracing`` installs later becomes its ``successor``."""

    def __init__(self) -> None:
        self.successor: TracerProvider | None = None

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        if self.successor is not None:
            return self.successor.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        return _ContextTracer(
            self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        )


class _ContextTracer(NoOpTracer):
    """Spans that carry the trace context and record nothing (``_child_span``), what the SDK's
    tracer gave while nothing processed its spans, for a few microseconds; the successor's
    spans once ``configure_tracing`` installed one. ``start_as_current_span`` is
    ``NoOpTracer``'s: this ``start_span``, made current."""

    def __init__(
        self,
        provider: _ContextTracerProvider,
        names: tuple[str, str | None, str | None, Attributes],
    ) -> None:
        self._provider = provider
        self._names = names

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        successor = self._provider.successor
        if successor is not None:
            return successor.get_tracer(*self._names).start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )
        return _child_span(context)


# httpx's own send methods, while configure_trace_context's replace them.
_httpx_sends: dict[str, Any] = {}


def _carry_trace_context_on_httpx(*, client_spans: bool = True) -> None:
    """Every request an httpx transport sends over the network gets the headers OpenTelemetry's
    httpx instrumentation gave it while it recorded nothing: ``traceparent`` (the current
    trace, a client span id of its own), and baggage; an earlier ``traceparent`` replaced.
    Patched where the instrumentation patches (the transports' send methods), so every client
    carries it, the parts' own and those libraries make (JWKS, webhooks). Not inside
    ``suppress_http_instrumentation()`` nor to the URLs ``OTEL_PYTHON_HTTPX_EXCLUDED_URLS`` (else
    ``OTEL_PYTHON_EXCLUDED_URLS``) names, read now, as the instrumentation did. Without
    ``client_spans``, the current trace as it is (the instrumentation's spans when the SDK was
    disabled)."""
    import httpx

    if _httpx_sends:
        return
    global _httpx_excluded_urls, _httpx_client_spans
    _httpx_excluded_urls = _excluded_httpx_urls()
    _httpx_client_spans = client_spans
    send_async = httpx.AsyncHTTPTransport.handle_async_request
    send = httpx.HTTPTransport.handle_request

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        _inject_client_context(request)
        return await send_async(self, request)

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        _inject_client_context(request)
        return send(self, request)

    _httpx_sends.update(send_async=send_async, send=send)
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]


def _stop_carrying_trace_context_on_httpx() -> None:
    import httpx

    if _httpx_sends:
        httpx.AsyncHTTPTransport.handle_async_request = _httpx_sends.pop("send_async")  # type: ignore[method-assign]
        httpx.HTTPTransport.handle_request = _httpx_sends.pop("send")  # type: ignore[method-assign]


# Read by _carry_trace_context_on_httpx: the URLs that get no trace context, and whether a
# request carries a client span id of its own (else the current span's).
_httpx_excluded_urls: ExcludeList | None = None
_httpx_client_spans = True


def _excluded_httpx_urls() -> ExcludeList | None:
    if not (
        os.environ.get("OTEL_PYTHON_HTTPX_EXCLUDED_URLS")
        or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    ):
        return None  # the usual case: opentelemetry.util.http (and semconv) not even imported
    from opentelemetry.util.http import get_excluded_urls

    return get_excluded_urls("HTTPX")


# suppress_instrumentation()'s key of older versions, which opentelemetry.instrumentation.utils
# still honours.
_SUPPRESS_INSTRUMENTATION_OLD_KEY = "suppress_instrumentation"


def _inject_client_context(request: httpx.Request) -> None:
    current = otel_context.get_current()
    # What opentelemetry.instrumentation.utils.is_http_instrumentation_enabled reads, without
    # importing that module (it imports wrapt).
    if current and (
        current.get(_SUPPRESS_HTTP_INSTRUMENTATION_KEY)
        or current.get(_SUPPRESS_INSTRUMENTATION_KEY)
        or current.get(_SUPPRESS_INSTRUMENTATION_OLD_KEY)
    ):
        return
    excluded = _httpx_excluded_urls
    if excluded is not None and excluded.url_disabled(str(request.url)):
        return
    if _httpx_client_spans:
        current = trace.set_span_in_context(_child_span(current))
    propagate.inject(request.headers, context=current)


_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class RequestTracing:
    """The request's trace, at the cost it is worth.

    While spans are recorded (an exporter is configured, or a sampler chosen), requests go
    through ``traced``, the stack OpenTelemetry's FastAPI instrumentation built. Otherwise
    through ``plain``, the same stack without it, inside a context that carries what a
    non-recorded server span carried: the caller's trace (``traceparent``, ``tracestate``,
    ``baggage``) or a new one, and a span id of this request's own, so log lines have a
    ``trace_id`` and calls to other parts pass the trace on. That costs a few microseconds
    instead of the instrumentation's ~0.1 ms, which recorded nothing. In a process that never
    records a span (``configure_process_tracing``) both are the plain stack: the instrumentation
    is not imported at all, and every request gets the context (even once ``configure_tracing``
    installs the SDK later, as tests do: its spans then continue the request's trace).
    """

    def __init__(self, *, traced: ASGIApp, plain: ASGIApp, excluded_paths: frozenset[str]) -> None:
        # FastAPI's own telemetry looks for the contrib middleware along ``.app``.
        self.app = traced
        self.plain = plain
        self.excluded_paths = excluded_paths
        self._instrumented = traced is not plain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._instrumented and records_spans()):
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.excluded_paths:
            await self.plain(scope, receive, send)
            return
        token = otel_context.attach(_request_trace_context(scope))
        try:
            await self.plain(scope, receive, send)
        finally:
            otel_context.detach(token)


# What a request without trace headers starts from (a Context is never changed in place).
_NO_CONTEXT = otel_context.Context()
_DEFAULT_FLAGS = TraceFlags(TraceFlags.DEFAULT)
_RANDOM_FLAGS = TraceFlags(TraceFlags.RANDOM_TRACE_ID)


def _request_trace_context(scope: Scope) -> otel_context.Context:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _TRACE_HEADERS
    }
    if not carrier:  # a new trace, this request's span its root
        span = SpanContext(_new_id(128), _new_id(64), is_remote=False, trace_flags=_DEFAULT_FLAGS)
        return trace.set_span_in_context(NonRecordingSpan(span), _NO_CONTEXT)
    if len(carrier) == 1:
        plain = _plain_traceparent(carrier)
        if plain is not None:  # the caller's trace, no state, no baggage: nothing else to carry
            trace_id, flags = plain
            span = SpanContext(trace_id, _new_id(64), is_remote=False, trace_flags=flags)
            return trace.set_span_in_context(NonRecordingSpan(span), _NO_CONTEXT)
    parent = propagate.extract(carrier)
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid:
        trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
    else:
        trace_id, flags, state = _new_id(128), _DEFAULT_FLAGS, None
    span = SpanContext(trace_id, _new_id(64), is_remote=False, trace_flags=flags, trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(span), parent)


_TRACEPARENT = TraceContextTextMapPropagator._TRACEPARENT_HEADER_FORMAT_RE
_W3C_FIELDS = (
    frozenset({"traceparent", "tracestate", "baggage"}),
    frozenset({"traceparent", "tracestate"}),
)


_w3c_textmap: list[object] = [None, False]  # the last global propagator checked, and whether


def _w3c_only(textmap: object) -> bool:
    """Whether ``textmap`` is the W3C trace context (and baggage) propagator, as by default."""
    held, w3c = _w3c_textmap
    if textmap is not held:
        w3c = type(textmap) is CompositePropagator and textmap.fields in _W3C_FIELDS
        _w3c_textmap[:] = [textmap, w3c]
    return bool(w3c)


def _plain_traceparent(carrier: dict[str, str]) -> tuple[int, TraceFlags] | None:
    """The trace id and flags of a well-formed version-00 ``traceparent`` (the one header a
    part behind the gateway receives), read as the W3C propagator reads it (its own pattern),
    without the composite propagator's rounds through contexts (≈ 10 → 3 µs a request).
    None for anything else, and while another propagator is configured: then the propagator
    decides, warnings and all."""
    value = carrier.get("traceparent")
    if value is None or len(value) > 512 or not _w3c_only(propagate.get_global_textmap()):
        return None
    match = _TRACEPARENT.search(value)
    if match is None or match.group(1) != "00" or match.group(5):
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, TraceFlags(int(match.group(4), 16))


def _new_id(bits: int) -> int:
    # As the SDK's RandomIdGenerator: never the all-zero (invalid) id.
    while True:
        value = random.getrandbits(bits)
        if value:
            return value
