"""The CloudEvents 1.0 envelope (JSON structured mode), subject names and trace headers."""

from __future__ import annotations

import builtins
import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal, TypeVar

from opentelemetry import propagate
from opentelemetry.context import Context
from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE: Final = "application/json"
MSG_ID_HEADER = "Nats-Msg-Id"

# One NATS subject token: lower-case, digits, '-' and '_' (no '.', '*', '>' or spaces).
_TOKEN = r"[a-z][a-z0-9_-]*"
EVENT_SUBJECT = re.compile(rf"^pingtai\.{_TOKEN}\.{_TOKEN}\.{_TOKEN}$")
PART_TOKEN = re.compile(rf"^{_TOKEN}$")

D = TypeVar("D", bound=BaseModel)


class InvalidEvent(ValueError):
    """An event or subject that breaks the envelope's rules."""


def check_event_type(event_type: str) -> str:
    """Return ``event_type`` if it reads ``pingtai.<part>.<aggregate>.<event>``, else raise."""
    if not EVENT_SUBJECT.match(event_type):
        raise InvalidEvent(
            f"event type {event_type!r} is not pingtai.<part>.<aggregate>.<event> "
            "(lower-case tokens of letters, digits, '-' and '_')"
        )
    return event_type


def check_token(token: str, *, what: str) -> str:
    """Return ``token`` if it can be one token of a NATS subject or a consumer name, else raise."""
    if not PART_TOKEN.match(token):
        raise InvalidEvent(f"{what} {token!r} must be lower-case letters, digits, '-' and '_'")
    return token


def part_of(subject: str) -> str:
    """The part that owns ``subject``: ``pingtai.workflow.application.*`` -> ``workflow``."""
    tokens = subject.split(".")
    if len(tokens) < 3 or tokens[0] != "pingtai":
        raise InvalidEvent(f"subject {subject!r} does not start with pingtai.<part>.")
    return check_token(tokens[1], what="part")


def stream_name(part: str) -> str:
    """The JetStream stream that holds a part's events: ``workflow`` -> ``PINGTAI_WORKFLOW``."""
    return f"PINGTAI_{check_token(part, what='part').upper().replace('-', '_')}"


def stream_subjects(part: str) -> list[str]:
    """The subjects a part's stream captures."""
    return [f"pingtai.{check_token(part, what='part')}.>"]


def dead_letter_type(*, part: str, consumer: str) -> str:
    """The event type (and subject) a consumer's dead letters go to."""
    return check_event_type(f"pingtai.{part}.deadletter.{consumer}")


class EventData(BaseModel):
    """The base of every event payload; a subclass names its CloudEvents ``type``.

    Unknown fields are ignored when reading, so a publisher may add fields without breaking
    consumers that read an older shape.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; ``type`` is also the NATS subject it is published on."""

    # Extension attributes from other producers pass through untouched.
    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1, max_length=255)
    time: datetime
    subject: str | None = Field(
        default=None, description="The aggregate the event is about, e.g. an application id."
    )
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: dict[str, Any] | None = None

    @property
    def ordering_key(self) -> str:
        """Events with the same key are published and consumed in the order they were added."""
        aggregate = self.type.rsplit(".", 1)[0]
        return f"{aggregate}:{self.subject or ''}"

    def data_as(self, model: builtins.type[D]) -> D:
        """The payload read as ``model`` (extra fields ignored)."""
        return model.model_validate(self.data or {})

    def to_json(self) -> bytes:
        """The structured-mode JSON body."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> CloudEvent:
        """Parse a structured-mode JSON body."""
        return cls.model_validate_json(body)


def new_event(
    data: EventData,
    *,
    subject: str | None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """A new envelope around ``data``; its source is the part that owns the event type."""
    event_type = check_event_type(data.event_type)
    return CloudEvent(
        id=event_id or uuid.uuid4().hex,
        source=f"/pingtai/{part_of(event_type)}",
        type=event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        data=data.model_dump(mode="json"),
    )


def new_event_unchecked(
    data_model: builtins.type[EventData],
    data: dict[str, Any],
    *,
    subject: str | None,
    time: datetime,
) -> CloudEvent:
    """``new_event`` for a hot path whose ``data`` already holds the payload model's fields as
    the model would (values pydantic serialises alike: a tuple for a list, an aware datetime):
    neither the payload nor the envelope is validated again, and the payload is not dumped to
    a dict first; ``to_json`` gives the same JSON (the caller's tests compare it with
    ``new_event``'s). For one exchange ledger event of three entries ≈ 10 µs instead of ≈ 35."""
    event_type = data_model.event_type
    return CloudEvent.model_construct(
        id=uuid.uuid4().hex,
        source=f"/pingtai/{part_of(event_type)}",
        type=event_type,
        time=time,
        subject=subject,
        data=data,
    )


def trace_headers() -> dict[str, str]:
    """The W3C trace context (``traceparent``, ``tracestate``) of the current span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_context(headers: dict[str, str] | None) -> Context:
    """The trace context carried in a message's headers (empty if none)."""
    return propagate.extract(headers or {})
