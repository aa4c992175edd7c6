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
from collections.abc import Callable
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
#
# The readers are fed the upload's chunks in order and give back the rows each completes, all at
# once: plain calls, so the import can run them in a worker thread with the checks (a row at a
# time through async generators cost more than splitting and parsing it).

Line = tuple[int, bytes | None]


class _Lines:
    """Splits chunks into lines: ``(line number, bytes without the "\\n")``, ``None`` for a
    line too long to keep (its bytes are dropped as they come)."""

    def __init__(self) -> None:
        self._pending = bytearray()  # the start of a line begun in an earlier chunk
        self._skipping = False  # that line is longer than MAX_RECORD_BYTES
        self._number = 1

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines ``chunk`` completes."""
        pending = self._pending
        pieces: list[bytes | None] = list(chunk.split(b"\n"))
        last = pieces.pop()
        lines: list[Line] = []
        if pieces:
            if self._skipping:
                pieces[0] = None
                self._skipping = False
            elif pending:
                pending += pieces[0] or b""
                pieces[0] = bytes(pending)
                pending.clear()
            if len(chunk) > MAX_RECORD_BYTES or len(pieces[0] or b"") > MAX_RECORD_BYTES:
                pieces = [p if p is None or len(p) <= MAX_RECORD_BYTES else None for p in pieces]
            lines = list(enumerate(pieces, self._number))
            self._number += len(pieces)
        if not self._skipping and last:
            pending += last
            if len(pending) > MAX_RECORD_BYTES:
                pending.clear()
                self._skipping = True
        return lines

    def end(self) -> list[Line]:
        """The last line, if the upload does not end with a line break."""
        if self._skipping:
            return [(self._number, None)]
        return [(self._number, bytes(self._pending))] if self._pending else []


_TOO_LONG = f"the record is longer than {MAX_RECORD_BYTES} bytes"


class NdjsonReader:
    """The records of an NDJSON upload; blank lines are skipped."""

    def __init__(self) -> None:
        self._lines = _Lines()

    def feed(self, chunk: bytes) -> list[RawRow]:
        """The records ``chunk`` completes."""
        return self._rows(self._lines.feed(chunk))

    def end(self) -> list[RawRow]:
        """The last record, if the upload does not end with a line break."""
        return self._rows(self._lines.end())

    @staticmethod
    def _rows(lines: list[Line]) -> list[RawRow]:
        loads = json.loads
        rows: list[RawRow] = []
        for number, line in lines:
            if line is None:
                rows.append(RawRow(number, None, _TOO_LONG))
                continue
            try:
                value = loads(line)
            except (UnicodeDecodeError, ValueError) as error:
                if line.strip():
                    rows.append(RawRow(number, None, f"not JSON: {error}"))
                continue
            if not isinstance(value, dict):
                rows.append(RawRow(number, None, "a line must hold one JSON object"))
                continue
            rows.append(RawRow(number, value))
        return rows


class CsvReader:
    """The records of a CSV upload after its header row; ``UploadRefused`` for a bad header."""

    def __init__(self, *, known: frozenset[str]) -> None:
        self._known = known
        self._lines = _Lines()
        self._header: list[str] | None = None
        self._pending: list[bytes] = []  # the lines of a record with a quoted line break
        self._start = 0  # its first line
        self._quotes = 0  # the quotes in them

    def feed(self, chunk: bytes) -> list[RawRow]:
        """The records ``chunk`` completes."""
        return self._rows(self._lines.feed(chunk))

    def end(self) -> list[RawRow]:
        """The last records; ``UploadRefused`` if there was no header row."""
        rows = self._rows(self._lines.end())
        if self._pending:
            rows.append(RawRow(self._start, None, "a quoted value is not closed"))
        if self._header is None:
            raise UploadRefused("The CSV upload has no header row.")
        return rows

    def _rows(self, lines: list[Line]) -> list[RawRow]:
        records: list[tuple[int, bytes]] = []
        rows: list[RawRow] = []
        pending = self._pending
        for number, line in lines:
            if line is None:
                pending.clear()
                self._quotes = 0
                rows += _csv_rows(records, self._header)
                records = []
                rows.append(RawRow(number, None, _TOO_LONG))
                continue
            count = line.count(b'"')
            if not pending and not count % 2:  # a record of one line (most are)
                if self._header is None:
                    self._header = _header(line, known=self._known)
                elif line.strip():
                    records.append((number, line))
                continue
            if not pending:
                self._start = number
            pending.append(line)
            # RFC 4180 doubles a quote inside a quoted value: a record ends where quotes balance.
            self._quotes += count
            if self._quotes % 2:
                if sum(len(p) for p in pending) > MAX_RECORD_BYTES:
                    pending.clear()
                    self._quotes = 0
                    rows += _csv_rows(records, self._header)
                    records = []
                    rows.append(RawRow(self._start, None, _TOO_LONG))
                continue
            raw = b"\n".join(pending)
            pending.clear()
            self._quotes = 0
            if self._header is None:
                self._header = _header(raw, known=self._known)
            elif raw.strip():
                records.append((self._start, raw))
        rows += _csv_rows(records, self._header)
        return rows


Reader = NdjsonReader | CsvReader


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


def _csv_rows(records: list[tuple[int, bytes]], header: list[str] | None) -> list[RawRow]:
    """The rows of complete records (``(first line, bytes)``), parsed by one reader.

    Where the reader fails (a row that is not UTF-8 or not CSV), or a record would run into
    the next (a quote inside an unquoted value opens none for our count but does for the
    reader's), each record is parsed alone, as it would be on its own.
    """
    if not records or header is None:
        return []
    try:
        parsed = list(csv.reader([raw.decode() for _, raw in records], strict=True))
    except (UnicodeDecodeError, csv.Error):
        parsed = []
    if len(parsed) != len(records):
        return [_csv_row(line, raw, header) for line, raw in records]
    width = len(header)
    rows: list[RawRow] = []
    for (line, _), cells in zip(records, parsed, strict=True):
        if len(cells) != width:
            rows.append(RawRow(line, None, f"{len(cells)} values for {width} columns"))
        else:
            rows.append(RawRow(line, {n: c or None for n, c in zip(header, cells, strict=True)}))
    return rows


def _csv_row(line: int, raw: bytes, header: list[str]) -> RawRow:
    try:
        cells = next(csv.reader([raw.decode("utf-8")], strict=True))
    except UnicodeDecodeError:
        return RawRow(line, None, "not UTF-8")
    except csv.Error as error:
        return RawRow(line, None, f"not CSV: {error}")
    if len(cells) != len(header):
        return RawRow(line, None, f"{len(cells)} values for {len(header)} columns")
    return RawRow(line, {n: c or None for n, c in zip(header, cells, strict=True)})


# --- Checking ------------------------------------------------------------------------------------

Convert = Callable[[Any], Any]


# Each type's converter for a CSV cell (text) or a JSON value: made once per upload, so a row
# pays one plain call per field.
def _string(text: bool) -> Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > MAX_STRING_CHARS:
            raise ValueError(f"must have at most {MAX_STRING_CHARS} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    return convert


def _integer(text: bool) -> Convert:
    def convert(value: Any) -> Any:
        if text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError("must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        return value

    return convert


def _number(text: bool) -> Convert:
    def convert(value: Any) -> Any:
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

    return convert


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _boolean(text: bool) -> Convert:
    def convert(value: Any) -> Any:
        if text and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    return convert


def _date(text: bool) -> Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None

    return convert


def _datetime(text: bool) -> Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a date and time (ISO 8601 with its offset)")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be a date and time (ISO 8601 with its offset)") from None
        if parsed.tzinfo is None:
            raise ValueError("must carry its UTC offset (e.g. +08:00)")
        return parsed.isoformat()

    return convert


_CONVERTERS: dict[str, Callable[[bool], Convert]] = {
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
        self.fields = tuple((f.name, _CONVERTERS[f.type](text)) for f in dataset.fields)
        self.names = frozenset(name for name, _ in self.fields)

    def check(self, row: RawRow) -> GoodRow | list[RowError]:
        """The row in canonical form, or every reason it was refused."""
        values = row.values
        if values is None:
            return [RowError(row.line, None, row.error or "unreadable")]
        line = row.line
        errors: list[RowError] = []
        if not self.names.issuperset(values):
            for name in values:
                if name not in self.names:
                    errors.append(RowError(line, str(name)[:64], "not a field of the dataset"))
        record: dict[str, Any] = {}
        for name, convert in self.fields:
            value = values.get(name)
            if value is None:
                record[name] = None
                continue
            try:
                record[name] = convert(value)
            except ValueError as error:
                errors.append(RowError(line, name, str(error)))
        key = record.get(self.key_field)
        subject_key = ""
        if key is None:
            if not any(e.field == self.key_field for e in errors):
                errors.append(RowError(line, self.key_field, "the subject key is required"))
        else:
            try:
                subject_key = check_subject_key(self.kind, str(key))
            except ValueError as error:
                errors.append(RowError(line, self.key_field, str(error)))
            if isinstance(key, str):
                record[self.key_field] = subject_key
        if errors:
            return errors
        return GoodRow(line, subject_key, _canonical(record))


# One encoder for every record (json.dumps with options builds a new one per call).
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(record: dict[str, Any]) -> str:
    """The record as stored: sorted keys, no blanks, UTF-8 text as is."""
    return _canonical(record)
