"""Prometheus metrics of the event backbone (the process's global registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONSUMER_LAG = Gauge(
    "pingtai_events_consumer_lag",
    "Events in the stream a durable consumer has not been delivered yet.",
    ["part", "consumer"],
)
EVENTS_HANDLED = Counter(
    "pingtai_events_handled_total",
    "Events a consumer finished with, by outcome (applied, duplicate, retried, dead_lettered).",
    ["part", "consumer", "outcome"],
)
OUTBOX_PENDING = Gauge(
    "pingtai_events_outbox_pending",
    "Events waiting in the outbox when the relay last looked.",
    ["part"],
)
EVENTS_PUBLISHED = Counter(
    "pingtai_events_published_total",
    "Outbox events JetStream acknowledged, by result (stored, duplicate).",
    ["part", "result"],
)
RELAY_FAILURES = Counter(
    "pingtai_events_relay_failures_total",
    "Relay rounds that failed (NATS away, stream missing, timeouts).",
    ["part"],
)
