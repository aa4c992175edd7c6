"""The OpenTelemetry SDK's side of ``libs.common.telemetry``: the tracer provider a process
installs when it exports spans or chooses a sampler.

Imported only then (``configure_tracing``): without it a part never loads the SDK, and its
spans are the trace context alone (``libs.common.telemetry.configure_trace_context``).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)


class _RecordWhenProcessed(Sampler):
    """Parent-based sampling (root spans recorded), but only once the provider has a span
    processor: with nowhere to export, spans still carry trace and span ids (the logs'
    ``trace_id``, the ``traceparent`` passed on) but record no attributes, which saves about
    0.7 ms of an identity token request here."""

    def __init__(self) -> None:
        self.processing = False
        self._parent_based = ParentBased(ALWAYS_ON)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        if self.processing:
            return self._parent_based.should_sample(*args, **kwargs)
        return _NOT_RECORDED

    def get_description(self) -> str:
        return "RecordWhenProcessed{ParentBased{root:AlwaysOnSampler}}"


_NOT_RECORDED = SamplingResult(Decision.DROP)


class _TracerProvider(TracerProvider):
    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        if isinstance(self.sampler, _RecordWhenProcessed):
            self.sampler.processing = True


def tracer_provider(service_name: str, *, exporting: bool) -> TracerProvider:
    """A provider for ``service_name``, exporting over OTLP when ``exporting``.

    ``OTEL_TRACES_SAMPLER``, when set, decides what is recorded; else spans are recorded only
    once something processes them (see ``_RecordWhenProcessed``)."""
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else _RecordWhenProcessed()
    provider = _TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=sampler
    )
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def records_spans(provider: object) -> bool:
    """Whether ``provider`` records spans now (an SDK provider whose spans something
    processes)."""
    if not isinstance(provider, TracerProvider):
        return False
    sampler = provider.sampler
    return not isinstance(sampler, _RecordWhenProcessed) or sampler.processing
