"""The outbox, inbox and dead-letter tables, added to a service's own MetaData."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from libs.common.database import new_metadata

OUTBOX = "pingtai_event_outbox"
INBOX = "pingtai_event_inbox"
DEAD_LETTER = "pingtai_event_dead_letter"

# SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
_Position = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class EventTables:
    """The three tables of the event backbone in one MetaData."""

    outbox: Table
    inbox: Table
    dead_letter: Table


def define_event_tables(metadata: MetaData) -> EventTables:
    """Add the outbox, inbox and dead-letter tables to ``metadata`` (a service's ``Base``)."""
    outbox = Table(
        OUTBOX,
        metadata,
        # The order events were added in; the relay publishes in this order.
        Column("position", _Position, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("ordering_key", String(512), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False, default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Index(f"ix_{OUTBOX}_pending", "sent_at", "position"),
    )
    inbox = Table(
        INBOX,
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False, index=True),
    )
    dead_letter = Table(
        DEAD_LETTER,
        metadata,
        Column("id", _Position, primary_key=True, autoincrement=True),
        Column("consumer", String(128), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("reason", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    return EventTables(outbox=outbox, inbox=inbox, dead_letter=dead_letter)


# The library's own copy: the same names and columns as in every service's MetaData, so the
# repository's statements work whichever service's session runs them.
TABLES = define_event_tables(new_metadata())
