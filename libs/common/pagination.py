"""Lists: `?limit=` (at most 200) and an opaque `?cursor=`; `{"items": [...], "next_cursor"}`.

A cursor is the position of the last row of a page, as JSON, in URL-safe base64. Clients may
send anything back, so a list reads the position with a *shape* that says what it must be
(``page.position(shape)`` or ``decode_cursor(cursor, shape)``): an integer the database can
hold, an ISO 8601 time, a bounded string, or a tuple of those. Anything else is the same 400
problem (``invalid-cursor``), never a value that overflows an SQL integer or a parser that
raises into a 500.

    after = page.position(INT_CURSOR)                 # int | None: a version, a position
    after = page.position(TIME_TEXT_CURSOR)           # tuple[datetime, str] | None
    SEARCH_CURSOR = CursorShape(tuple[Literal["c"], CursorText])   # a shape of one's own
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, overload

from fastapi import Depends, Query
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from libs.common.errors import PingtaiError
from libs.common.times import UtcDateTime, as_utc

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# What ?cursor= may be: room for a position with a long Chinese name (200 characters, UTF-8).
MAX_CURSOR_LENGTH = 2048

# The integers SQLite and PostgreSQL's BIGINT hold; a position is never 0 or negative.
MAX_CURSOR_INT = 2**63 - 1
MAX_CURSOR_TEXT = 512


class InvalidCursor(PingtaiError):
    status = 400
    code = "invalid-cursor"


_NOT_OURS = "The cursor is not one this list gave out."


CursorInt = Annotated[int, Field(ge=1, le=MAX_CURSOR_INT)]
"""A positive integer position (an id, a version, a ledger position) an SQL BIGINT holds."""

CursorText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CURSOR_TEXT, pattern=r"^[^\x00-\x1f\x7f]*$"),
]
"""A string position (an id, a code, a name): 1-512 characters, no control characters (NUL
would reach PostgreSQL as an error)."""

CursorTime = UtcDateTime
"""An ISO 8601 time (``2026-11-05T08:00:00+00:00``), returned in UTC (a naive one is UTC)."""


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class CursorShape(Generic[T_co]):
    """What a list's cursor position must be, e.g. ``CursorShape(tuple[CursorTime, CursorText])``
    (built once, at import: it compiles a validator)."""

    __slots__ = ("_adapter",)

    def __init__(self, shape: type[T_co]) -> None:
        self._adapter: TypeAdapter[T_co] = TypeAdapter(shape)

    def parse(self, raw: bytes) -> T_co:
        """The position in the cursor's JSON ``raw``; InvalidCursor (400) if of another shape."""
        try:
            # Strict JSON validation: 1.0, true and "1" are not integers; times must be strings.
            return self._adapter.validate_json(raw, strict=True)
        except ValidationError as exc:
            raise InvalidCursor(_NOT_OURS) from exc


INT_CURSOR = CursorShape(CursorInt)
"""A list keyed by a positive integer (a version, a position)."""
TEXT_CURSOR = CursorShape(CursorText)
"""A list keyed by a string (an id, a code)."""
TIME_TEXT_CURSOR = CursorShape(tuple[CursorTime, CursorText])
"""A list ordered by a time, then an id: ``[time, id]``."""


def _any_position(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor(_NOT_OURS) from exc


def encode_cursor(position: Any) -> str:
    """An opaque cursor for the row at ``position`` (a JSON value, e.g. the last id)."""
    raw = json.dumps(position, separators=(",", ":"), ensure_ascii=False, default=_encode_time)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _encode_time(value: Any) -> str:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"a cursor position holds JSON values and times, not {type(value).__name__}")


def _cursor_bytes(cursor: str) -> bytes:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidCursor(_NOT_OURS) from exc


@overload
def decode_cursor(cursor: str) -> Any: ...
@overload
def decode_cursor(cursor: str, shape: CursorShape[T]) -> T: ...
def decode_cursor(cursor: str, shape: CursorShape[T] | None = None) -> T | Any:
    """The position a cursor stands for, checked against ``shape`` (``INT_CURSOR``,
    ``TIME_TEXT_CURSOR``, a ``CursorShape`` of your own); without a shape, any JSON value
    (check it yourself). InvalidCursor (400) when it was not one of ours."""
    raw = _cursor_bytes(cursor)
    return _any_position(raw) if shape is None else shape.parse(raw)


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class PageRequest(BaseModel):
    """What a client asked of a list."""

    limit: int
    # The decoded JSON of the cursor, unchecked: prefer ``position(shape)``.
    after: Any = None
    _raw: bytes | None = PrivateAttr(default=None)

    def position(self, shape: CursorShape[T]) -> T | None:
        """The cursor's position checked against ``shape``; None on the first page,
        InvalidCursor (400) when the cursor does not have that shape."""
        if self._raw is None:
            return None
        return shape.parse(self._raw)


async def _page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="From the previous page's next_cursor."),
    ] = None,
) -> PageRequest:
    if not cursor:
        return PageRequest(limit=limit)
    raw = _cursor_bytes(cursor)
    page = PageRequest(limit=limit, after=_any_position(raw))
    page._raw = raw
    return page


PageDep = Annotated[PageRequest, Depends(_page_request)]
