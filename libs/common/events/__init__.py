"""The event backbone: CloudEvents over NATS JetStream, with a transactional outbox and inbox.

A service

- adds the tables to its schema: ``define_event_tables(Base.metadata)``;
- describes each event as an ``EventData`` subclass and records it with the change:
  ``await outbox.add(session, new_event(ApplicationSubmitted(...), subject=application_id))``;
- consumes with ``Subscription(durable=..., subjects=[...], handler=...)``, or, for state each
  process keeps in memory, ``Broadcast(name=..., subjects=[...], handler=..., replay_s=...)``;
- gives ``EventBus(settings, subscriptions=[...], broadcasts=[...])`` to
  ``create_service_app(..., events=bus)``.

See docs/events.md.
"""

from libs.common.events import outbox
from libs.common.events.broadcasts import Broadcast, BroadcastHandler
from libs.common.events.bus import EventBus, EventsUnavailable
from libs.common.events.consumers import BatchHandler, Handler, Subscription
from libs.common.events.envelope import (
    CloudEvent,
    EventData,
    InvalidEvent,
    dead_letter_type,
    new_event,
    stream_name,
)
from libs.common.events.streams import StreamLimits, ensure_stream
from libs.common.events.tables import EventTables, define_event_tables

__all__ = [
    "BatchHandler",
    "Broadcast",
    "BroadcastHandler",
    "CloudEvent",
    "EventBus",
    "EventData",
    "EventTables",
    "EventsUnavailable",
    "Handler",
    "InvalidEvent",
    "StreamLimits",
    "Subscription",
    "dead_letter_type",
    "define_event_tables",
    "ensure_stream",
    "new_event",
    "outbox",
    "stream_name",
]
