"""Reading an upload of records as it streams in, and checking each row against the schema.

NDJSON: one JSON object per line. CSV (RFC 4180, UTF-8, a header row naming the fields): one
record per row; a quoted value may span lines; an empty cell is null. Rows are numbered by the
line they start on (the CSV header is line 1). Nothing holds more than one record's bytes (at
most ``MAX_RECORD_BYTES``) besides the current chunk.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from libs.common.errors import PingtaiError
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.datasets.service import check_subject_key

MAX_RECORD_BYTES = 1024 * 1024
MAX_STRING_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was refused."""

    line: int
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record as read: its line, and its values or why it could not be read."""

    line: int
    values: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GoodRow:
    """A valid row: its normalised subject key and the record as canonical JSON."""

    line: int
    subject_key: str
    data: str


class UploadRefused(PingtaiError):
    """The upload as a whole cannot be read (e.g. a CSV header naming unknown fields)."""

    status = 422
    code = "upload-refused"
    title = "The upload cannot be read"


# --- Reading -------------------------------------------------------------------------------------


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes | None]]:
    """``(line number, bytes without the "\\n")``; ``None`` for a line too long to keep."""
    buffer = bytearray()
    number = 1
    skipping = False
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not skipping:
                    buffer += chunk[start:]
                    if len(buffer) > MAX_RECORD_BYTES:
                        buffer.clear()
                        skipping = True
                break
            if skipping:
                yield number, None
                skipping = False
            else:
                buffer += chunk[start:end]
                yield number, bytes(buffer)
            buffer.clear()
            number += 1
            start = end + 1
    if skipping:
        yield number, None
    elif buffer:
        yield number, bytes(buffer)


_TOO_LONG = f"the record is longer than {MAX_RECORD_BYTES} bytes"


async def read_ndjson(chunks: AsyncIterator[bytes]) -> AsyncIterator[RawRow]:
    """The records of an NDJSON upload; blank lines are skipped."""
    async for number, line in _lines(chunks):
        if line is None:
            yield RawRow(number, None, _TOO_LONG)
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (UnicodeDecodeError, ValueError) as error:
            yield RawRow(number, None, f"not JSON: {error}")
            continue
        if not isinstance(value, dict):
            yield RawRow(number, None, "a line must hold one JSON object")
            continue
        yield RawRow(number, value)


async def read_csv(chunks: AsyncIterator[bytes], *, known: frozenset[str]) -> AsyncIterator[RawRow]:
    """The records of a CSV upload, after its header row; ``UploadRefused`` for a bad header."""
    header: list[str] | None = None
    pending: list[bytes] = []
    start = 0
    quotes = 0
    async for number, line in _lines(chunks):
        if line is None:
            pending, quotes = [], 0
            yield RawRow(number, None, _TOO_LONG)
            continue
        if not pending:
            start = number
        pending.append(line)
        # RFC 4180 doubles a quote inside a quoted value: a record ends where quotes balance.
        quotes += line.count(b'"')
        if quotes % 2:
            if sum(len(p) for p in pending) > MAX_RECORD_BYTES:
                pending, quotes = [], 0
                yield RawRow(start, None, _TOO_LONG)
            continue
        raw, pending, quotes = b"\n".join(pending), [], 0
        if header is None:
            header = _header(raw, known=known)
            continue
        if not raw.strip():
            continue
        yield _csv_row(start, raw, header)
    if pending:
        yield RawRow(start, None, "a quoted value is not closed")
    if header is None:
        raise UploadRefused("The CSV upload has no header row.")


def _header(raw: bytes, *, known: frozenset[str]) -> list[str]:
    try:
        names = [n.strip() for n in next(csv.reader([raw.decode("utf-8-sig")]))]
    except (UnicodeDecodeError, csv.Error, StopIteration) as error:
        raise UploadRefused(f"The CSV header row cannot be read: {error}") from None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UploadRefused(f"The CSV header names fields the dataset does not have: {unknown}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UploadRefused(f"The CSV header names fields more than once: {repeated}")
    return names


def _csv_row(line: int, raw: bytes, header: list[str]) -> RawRow:
    try:
        cells = next(csv.reader([raw.decode("utf-8")], strict=True))
    except UnicodeDecodeError:
        return RawRow(line, None, "not UTF-8")
    except csv.Error as error:
        return RawRow(line, None, f"not CSV: {error}")
    if len(cells) != len(header):
        return RawRow(line, None, f"{len(cells)} values for {len(header)} columns")
    return RawRow(line, {n: (c if c != "" else None) for n, c in zip(header, cells, strict=True)})


# --- Checking ------------------------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _string(value: Any, *, text: bool) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > MAX_STRING_CHARS:
        raise ValueError(f"must have at most {MAX_STRING_CHARS} characters")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _integer(value: Any, *, text: bool) -> Any:
    if text and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError("must be an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


def _number(value: Any, *, text: bool) -> Any:
    if text and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _boolean(value: Any, *, text: bool) -> Any:
    if text and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _date(value: Any, *, text: bool) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD)") from None


def _datetime(value: Any, *, text: bool) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a date and time (ISO 8601 with its offset)")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a date and time (ISO 8601 with its offset)") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry its UTC offset (e.g. +08:00)")
    return parsed.isoformat()


_CONVERTERS: dict[str, Callable[..., Any]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
}


class RowChecker:
    """Checks rows against one dataset version's fields and makes their canonical form."""

    def __init__(self, dataset: ExchangeDataset, *, text: bool) -> None:
        self.kind = dataset.subject_key_kind
        self.key_field = dataset.subject_key_field
        self.text = text
        self.types = {f.name: _CONVERTERS[f.type] for f in dataset.fields}
        self.names = frozenset(self.types)

    def check(self, row: RawRow) -> GoodRow | list[RowError]:
        """The row in canonical form, or every reason it was refused."""
        if row.values is None:
            return [RowError(row.line, None, row.error or "unreadable")]
        values = row.values
        errors: list[RowError] = []
        for name in values:
            if name not in self.names:
                errors.append(RowError(row.line, str(name)[:64], "not a field of the dataset"))
        record: dict[str, Any] = {}
        for name, convert in self.types.items():
            value = values.get(name)
            if value is None:
                record[name] = None
                continue
            try:
                record[name] = convert(value, text=self.text)
            except ValueError as error:
                errors.append(RowError(row.line, name, str(error)))
        key = record.get(self.key_field)
        subject_key = ""
        if key is None:
            if not any(e.field == self.key_field for e in errors):
                errors.append(RowError(row.line, self.key_field, "the subject key is required"))
        else:
            try:
                subject_key = check_subject_key(self.kind, str(key))
            except ValueError as error:
                errors.append(RowError(row.line, self.key_field, str(error)))
            if isinstance(key, str):
                record[self.key_field] = subject_key
        if errors:
            return errors
        return GoodRow(row.line, subject_key, canonical_json(record))


def canonical_json(record: dict[str, Any]) -> str:
    """The record as stored: sorted keys, no blanks, UTF-8 text as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
