"""The CloudEvents envelope, subject names and the tables a service adds to its schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from libs.common.database import new_metadata
from libs.common.events import (
    CloudEvent,
    EventData,
    InvalidEvent,
    dead_letter_type,
    define_event_tables,
    new_event,
    stream_name,
)
from tests.common.events.harness import ThingHappened


def test_new_event_is_a_cloudevent_in_json_structured_mode() -> None:
    at = datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=UTC)
    event = new_event(ThingHappened(aggregate="a1", seq=3), subject="a1", event_id="e1", time=at)

    body = json.loads(event.to_json())

    assert body == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/pingtai/ledger",
        "type": "pingtai.ledger.thing.happened",
        "time": "2026-11-28T09:30:00.123456Z",
        "subject": "a1",
        "datacontenttype": "application/json",
        "data": {"aggregate": "a1", "seq": 3},
    }
    assert CloudEvent.from_json(event.to_json()) == event


def test_a_consumer_tolerates_added_fields_and_extensions() -> None:
    body = {
        "specversion": "1.0",
        "id": "e2",
        "source": "/pingtai/ledger",
        "type": "pingtai.ledger.thing.happened",
        "time": "2026-11-28T09:30:00Z",
        "subject": "a1",
        "datacontenttype": "application/json",
        "partitionkey": "a1",
        "data": {"aggregate": "a1", "seq": 4, "added_later": True},
    }

    event = CloudEvent.from_json(json.dumps(body).encode())

    assert event.data_as(ThingHappened) == ThingHappened(aggregate="a1", seq=4)
    assert json.loads(event.to_json())["partitionkey"] == "a1"


@pytest.mark.parametrize(
    "event_type",
    [
        "ledger.thing.happened",
        "pingtai.ledger.thing",
        "pingtai.ledger.thing.happened.twice",
        "pingtai.Ledger.thing.happened",
        "pingtai.ledger.thing.*",
        "pingtai.ledger.thing happened.now",
    ],
)
def test_event_types_follow_the_subject_naming(event_type: str) -> None:
    class Odd(EventData):
        event_type: ClassVar[str]

    Odd.event_type = event_type
    with pytest.raises(InvalidEvent):
        new_event(Odd(), subject=None)


def test_names_derive_from_the_part() -> None:
    assert stream_name("workflow") == "PINGTAI_WORKFLOW"
    assert dead_letter_type(part="evaluation", consumer="scores") == (
        "pingtai.evaluation.deadletter.scores"
    )
    assert new_event(ThingHappened(aggregate="x", seq=1), subject="x").ordering_key == (
        "pingtai.ledger.thing:x"
    )


def test_the_tables_join_any_service_metadata() -> None:
    metadata = new_metadata()

    tables = define_event_tables(metadata)

    assert set(metadata.tables) == {
        "pingtai_event_outbox",
        "pingtai_event_inbox",
        "pingtai_event_dead_letter",
    }
    assert tables.outbox.metadata is metadata
    assert [c.name for c in tables.inbox.primary_key.columns] == ["consumer", "event_id"]
