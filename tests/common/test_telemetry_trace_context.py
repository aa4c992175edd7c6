"""A request's trace context without an exporter (``RequestTracing``): the short ways taken for
no trace headers and for a plain ``traceparent`` give what OpenTelemetry's propagators give."""

from __future__ import annotations

import random

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from libs.common.telemetry import _request_trace_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def _by_the_propagators(carrier: dict[str, str]) -> Context:
    """What the request's context was before the short ways: the propagators decide."""
    parent = propagate.extract(carrier) if carrier else Context()
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid:
        trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
    else:
        trace_id = random.getrandbits(128) or 1
        flags, state = TraceFlags(TraceFlags.DEFAULT), None
    span_id = random.getrandbits(64) or 1
    span = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(span), parent)


def _seen(context: Context) -> tuple[object, ...]:
    span = trace.get_current_span(context).get_span_context()
    return (
        span.trace_id,
        span.span_id,
        span.is_remote,
        span.trace_flags,
        span.trace_state.to_header(),
        span.is_valid,
        sorted(context),
        dict(baggage.get_all(context)),
    )


def _same(headers: dict[str, str]) -> None:
    scope = {"headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
    state = random.getstate()  # new ids come from the global generator: same seed, same ids
    try:
        random.seed(7)
        expected = _seen(_by_the_propagators(headers))
        random.seed(7)
        assert _seen(_request_trace_context(scope)) == expected, headers
    finally:
        random.setstate(state)  # request ids come from it too: leave it as it was


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": f"00-{TRACE}-{SPAN}-01"},
        {"traceparent": f"00-{TRACE}-{SPAN}-00"},
        {"traceparent": f" \t00-{TRACE}-{SPAN}-03 "},
        {"traceparent": f"00-{TRACE}-{SPAN}-01-extra"},
        {"traceparent": f"01-{TRACE}-{SPAN}-01-future"},
        {"traceparent": f"ff-{TRACE}-{SPAN}-01"},
        {"traceparent": f"00-{'0' * 32}-{SPAN}-01"},
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
        {"traceparent": f"00-{TRACE.upper()}-{SPAN}-01"},
        {"traceparent": f"00-{TRACE}-{SPAN}-01" + " " * 600},
        {"traceparent": "garbage"},
        {"traceparent": ""},
        {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "vendor=1"},
        {"traceparent": f"00-{TRACE}-{SPAN}-01", "baggage": "user=alice"},
        {"tracestate": "vendor=1"},
        {"baggage": "user=alice"},
    ],
)
def test_the_context_is_the_propagators(headers: dict[str, str]) -> None:
    _same(headers)


def test_random_traceparents_are_read_as_the_propagator_reads_them() -> None:
    rng = random.Random(6)
    pieces = ["00", "01", "ff", "0g", TRACE, "0" * 32, SPAN, "0" * 16, "01", "-", " ", "\t", "x"]
    for _ in range(3000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        _same({"traceparent": value})
    for _ in range(500):
        flags = f"{rng.randrange(256):02x}"
        _same({"traceparent": f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-{flags}"})


def test_another_propagator_decides_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only the trace-context propagator the plain header is read the same way; with
    something else configured, the configured propagator reads it."""
    monkeypatch.setattr(
        propagate,
        "get_global_textmap",
        lambda: CompositePropagator([TraceContextTextMapPropagator()]),
    )
    _same({"traceparent": f"00-{TRACE}-{SPAN}-01"})

    class Ignoring(TraceContextTextMapPropagator):
        def extract(
            self, carrier: object, context: Context | None = None, getter: object = None
        ) -> Context:
            return context if context is not None else Context()

        @property
        def fields(self) -> set[str]:
            return {"traceparent", "tracestate", "x-vendor"}

    textmap = CompositePropagator([Ignoring()])
    monkeypatch.setattr(propagate, "get_global_textmap", lambda: textmap)
    scope = {"headers": [(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode())]}
    span = trace.get_current_span(_request_trace_context(scope)).get_span_context()
    assert format(span.trace_id, "032x") != TRACE  # the configured propagator's answer
