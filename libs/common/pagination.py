"""Lists: `?limit=` (at most 200) and an opaque `?cursor=`; `{"items": [...], "next_cursor"}`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from libs.common.errors import PingtaiError

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class InvalidCursor(PingtaiError):
    status = 400
    code = "invalid-cursor"


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class PageRequest(BaseModel):
    """What a client asked of a list."""

    limit: int
    after: Any = None


def encode_cursor(position: Any) -> str:
    """An opaque cursor for the row at ``position`` (a JSON value, e.g. the last id)."""
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The position a cursor stands for; a problem document when it was not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one this list gave out.") from exc


async def _page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="From the previous page's next_cursor.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageRequest, Depends(_page_request)]
