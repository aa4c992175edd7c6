"""Typed cursors: a position is what its list gave out, or a 400 problem; never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import BigInteger, DateTime, String, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.database import SessionDep, new_metadata
from libs.common.pagination import (
    INT_CURSOR,
    MAX_CURSOR_INT,
    MAX_CURSOR_TEXT,
    TEXT_CURSOR,
    TIME_TEXT_CURSOR,
    CursorShape,
    CursorText,
    CursorTime,
    InvalidCursor,
    Page,
    PageDep,
    decode_cursor,
    encode_cursor,
)
from tests.common.conftest import sample_client

TIME_CURSOR = CursorShape(CursorTime)
SEARCH = CursorShape(tuple[Literal["r"], Literal[0, 1], CursorText])
LONG_NAME = CursorShape(tuple[Literal["n"], CursorText, CursorText])


def _raw(value: object) -> str:
    """A cursor for any JSON value, as a client could forge one."""
    text = json.dumps(value, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _forged(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


# -- decode_cursor ------------------------------------------------------------------------------


def test_a_cursor_round_trips_through_its_shape() -> None:
    at = datetime(2026, 11, 5, 8, 30, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(42), INT_CURSOR) == 42
    assert decode_cursor(encode_cursor("农业-0001"), TEXT_CURSOR) == "农业-0001"
    assert decode_cursor(encode_cursor([at, "abc"]), TIME_TEXT_CURSOR) == (at, "abc")
    assert decode_cursor(encode_cursor(["r", 0, "code"]), SEARCH) == ("r", 0, "code")
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(["r", 2, "code"]), SEARCH)
    # Without a shape: the JSON value, as before.
    assert decode_cursor(encode_cursor({"a": [1, 2]})) == {"a": [1, 2]}


def test_integers_are_positive_and_fit_a_bigint() -> None:
    assert decode_cursor(_raw(MAX_CURSOR_INT), INT_CURSOR) == 2**63 - 1
    assert decode_cursor(_raw(1), INT_CURSOR) == 1
    for bad in (2**63, 10**30, 0, -1, 1.0, 1.5, True, "7", None, [7]):
        with pytest.raises(InvalidCursor):
            decode_cursor(_raw(bad), INT_CURSOR)


def test_text_is_bounded_and_has_no_control_characters() -> None:
    assert decode_cursor(_raw("x" * MAX_CURSOR_TEXT), TEXT_CURSOR) == "x" * MAX_CURSOR_TEXT
    for bad in ("", "x" * (MAX_CURSOR_TEXT + 1), "a\x00b", "a\nb", 7, None, ["a"]):
        with pytest.raises(InvalidCursor):
            decode_cursor(_raw(bad), TEXT_CURSOR)
    # A lone surrogate (valid JSON escape, not encodable as UTF-8 for the database).
    with pytest.raises(InvalidCursor):
        decode_cursor(_forged(b'"\\ud800"'), TEXT_CURSOR)


def test_times_are_iso_8601_and_come_back_in_utc() -> None:
    east = timezone(timedelta(hours=8))
    assert decode_cursor(_raw("2026-11-05T16:00:00+08:00"), TIME_CURSOR) == datetime(
        2026, 11, 5, 8, tzinfo=UTC
    )
    assert decode_cursor(_raw("2026-11-05T08:00:00"), TIME_CURSOR) == datetime(
        2026, 11, 5, 8, tzinfo=UTC
    )  # naive: UTC
    assert decode_cursor(encode_cursor(datetime(2026, 1, 1, 8, tzinfo=east)), TIME_CURSOR) == (
        datetime(2026, 1, 1, tzinfo=UTC)
    )
    for bad in (
        "garbage",
        "2026-11-05",  # a date is not a time
        "2026-13-01T00:00:00",
        "9999-12-31T23:59:59-05:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        1_700_000_000,
        None,
    ):
        with pytest.raises(InvalidCursor):
            decode_cursor(_raw(bad), TIME_CURSOR)


def test_a_tuple_has_exactly_its_parts() -> None:
    for bad in (
        ["garbage", "x"],
        ["2026-11-05T08:00:00Z"],
        ["2026-11-05T08:00:00Z", "x", "y"],
        ["2026-11-05T08:00:00Z", 7],
        {"0": "2026-11-05T08:00:00Z", "1": "x"},
        "2026-11-05T08:00:00Z",
    ):
        with pytest.raises(InvalidCursor):
            decode_cursor(_raw(bad), TIME_TEXT_CURSOR)


def test_what_is_not_a_cursor_at_all_is_refused() -> None:
    for bad in ("%%%", "not base64!", "ñ", _forged(b"{not json"), _forged(b"\xff\xfe")):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, INT_CURSOR)


def test_a_long_chinese_position_fits_the_query_limit() -> None:
    # An item name of 200 characters and its code: the longest position the catalog gives out.
    cursor = encode_cursor(["n", "事" * 200, "c" * 64])
    assert len(cursor) <= 2048
    assert decode_cursor(cursor, LONG_NAME)[1] == "事" * 200


# -- PageDep and page.position, through a real list on both databases ----------------------------


class Base(DeclarativeBase):
    metadata = new_metadata()


class Entry(Base):
    __tablename__ = "entry"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(50))


router = APIRouter(prefix="/v1")


@router.get("/by-id")
async def by_id(session: SessionDep, page: PageDep) -> Page[int]:
    after = page.position(INT_CURSOR)
    statement = select(Entry.id).order_by(Entry.id).limit(page.limit)
    if after is not None:
        statement = statement.where(Entry.id > after)
    ids = list((await session.scalars(statement)).all())
    return Page[int](items=ids, next_cursor=encode_cursor(ids[-1]) if ids else None)


@router.get("/by-time")
async def by_time(session: SessionDep, page: PageDep) -> Page[str]:
    after = page.position(TIME_TEXT_CURSOR)
    statement = select(Entry).order_by(Entry.at, Entry.name).limit(page.limit)
    if after is not None:
        statement = statement.where(
            (Entry.at > after[0]) | ((Entry.at == after[0]) & (Entry.name > after[1]))
        )
    rows = list((await session.scalars(statement)).all())
    last = rows[-1] if rows else None
    return Page[str](
        items=[r.name for r in rows],
        next_cursor=encode_cursor([last.at, last.name]) if last else None,
    )


async def _fill(connection: AsyncConnection) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"id": n, "at": start + timedelta(minutes=n // 2), "name": f"e{n:02d}"} for n in range(1, 8)
    ]
    rows.append({"id": MAX_CURSOR_INT, "at": start + timedelta(days=1), "name": "last"})
    await connection.execute(insert(Entry), rows)


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with sample_client(
        database_url, metadata=Base.metadata, routers=[router], fill=_fill
    ) as client:
        yield client


async def _walk(client: httpx.AsyncClient, path: str) -> list[object]:
    seen: list[object] = []
    cursor = None
    for _ in range(20):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if not body["items"]:
            return seen
    raise AssertionError("the pages never ended")


async def test_pages_follow_their_cursors_to_the_end(client: httpx.AsyncClient) -> None:
    assert await _walk(client, "/v1/by-id") == [1, 2, 3, 4, 5, 6, 7, MAX_CURSOR_INT]
    names = await _walk(client, "/v1/by-time")
    assert names == ["e01", "e02", "e03", "e04", "e05", "e06", "e07", "last"]


@pytest.mark.parametrize(
    ("path", "position"),
    [
        ("/v1/by-id", 10**30),  # overflowed SQLite's INTEGER: a 500 before
        ("/v1/by-id", 2**63),
        ("/v1/by-id", -5),
        ("/v1/by-id", "7"),
        ("/v1/by-time", ["garbage", "x"]),  # datetime.fromisoformat raised: a 500 before
        ("/v1/by-time", ["2026-01-01T00:00:00Z", "a\u0000b"]),  # NUL: PostgreSQL refuses it
        ("/v1/by-time", [10**30, "x"]),
        ("/v1/by-time", "2026-01-01T00:00:00Z"),
    ],
)
async def test_a_forged_cursor_is_a_400_problem(
    client: httpx.AsyncClient, path: str, position: object
) -> None:
    response = await client.get(path, params={"cursor": _raw(position)})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/invalid-cursor")
    assert body["detail"] == "The cursor is not one this list gave out."


async def test_a_cursor_that_is_not_base64_json_is_a_400_and_an_overlong_one_a_422(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/by-id", params={"cursor": "!!!"})).status_code == 400
    too_long = await client.get("/v1/by-id", params={"cursor": "A" * 2049})
    assert too_long.status_code == 422
