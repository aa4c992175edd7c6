"""The evaluation part's declarative base and event tables; concepts' models build on it."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from libs.common.database import new_metadata
from libs.common.events import define_event_tables


class Base(DeclarativeBase):
    """The declarative base of the evaluation part; its metadata is this part's schema."""

    metadata = new_metadata()


# The outbox, inbox and dead-letter tables of the event backbone (docs/events.md).
event_tables = define_event_tables(Base.metadata)
