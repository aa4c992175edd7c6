"""Reading uploads a chunk at a time: every row at its line, whatever the chunks' sizes."""

from __future__ import annotations

import pytest

from services.exchange.records import parsing
from services.exchange.records.parsing import CsvReader, NdjsonReader, RawRow

KNOWN = frozenset({"a", "b", "c"})


def read(reader: NdjsonReader | CsvReader, body: bytes, size: int) -> list[RawRow]:
    """What the reader gives fed ``body`` in chunks of ``size`` bytes."""
    rows = [row for at in range(0, len(body), size) for row in reader.feed(body[at : at + size])]
    return rows + reader.end()


def csv_rows(body: bytes, size: int) -> list[RawRow]:
    return read(CsvReader(known=KNOWN), body, size)


def ndjson_rows(body: bytes, size: int) -> list[RawRow]:
    return read(NdjsonReader(), body, size)


# Records of every kind a reader must tell apart, each on its own as RFC 4180 reads it.
AWKWARD_CSV = (
    b"a,b,c\r\n"  # line 1: the header
    b"1,plain,x\r\n"
    b'2,"quoted, with ""quotes""",y\r\n'
    b'3,"two\r\nlines",z\r\n'  # lines 4-5
    b"\r\n"  # line 6: blank, skipped
    # Line 7: a quote inside an unquoted value and one opening a value never closed: even for
    # our count, a record of one line; a reader would run on into line 8 and close it there.
    b'4,un"quoted,"opens\r\n'
    b'more",y"z\r\n'
    b'"5",after,it\r\n'
    b"6,,\r\n"  # line 10: empty cells are null
    b"7,too,many,cells\r\n"
    b'8,"x"y,z\r\n'  # not CSV: text after a closing quote
    b"9,last,row\r\n"
    b"10,\xff\xfe,bad utf-8"  # not UTF-8, and no final line break
)


def one_by_one() -> list[RawRow]:
    """What each record gives parsed alone (the reader's reference)."""
    header = ["a", "b", "c"]
    return [
        parsing._csv_row(2, b"1,plain,x\r", header),
        parsing._csv_row(3, b'2,"quoted, with ""quotes""",y\r', header),
        parsing._csv_row(4, b'3,"two\r\nlines",z\r', header),
        parsing._csv_row(7, b'4,un"quoted,"opens\r', header),
        parsing._csv_row(8, b'more",y"z\r', header),
        parsing._csv_row(9, b'"5",after,it\r', header),
        parsing._csv_row(10, b"6,,\r", header),
        parsing._csv_row(11, b"7,too,many,cells\r", header),
        parsing._csv_row(12, b'8,"x"y,z\r', header),
        parsing._csv_row(13, b"9,last,row\r", header),
        parsing._csv_row(14, b"10,\xff\xfe,bad utf-8", header),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 16])
def test_csv_records_read_in_one_go_are_read_as_alone(size: int) -> None:
    rows = csv_rows(AWKWARD_CSV, size)
    assert rows == one_by_one()
    assert rows[0].values == {"a": "1", "b": "plain", "c": "x"}
    assert rows[2].values == {"a": "3", "b": "two\r\nlines", "c": "z"}
    assert rows[3].error == "not CSV: unexpected end of data"
    assert rows[4].error == "2 values for 3 columns"
    assert rows[5].values == {"a": "5", "b": "after", "c": "it"}
    assert rows[6].values == {"a": "6", "b": None, "c": None}
    assert rows[7].error == "4 values for 3 columns"
    assert rows[8].error is not None and rows[8].error.startswith("not CSV")
    assert rows[10].error == "not UTF-8"


@pytest.mark.parametrize("size", [1, 5, 64])
def test_ndjson_lines_across_chunks(size: int) -> None:
    body = '{"a": "一"}\n\n  \r\n{"a": 2}\r\n[1]\nnot json\n{"b": "二"}'.encode()
    rows = ndjson_rows(body, size)
    assert [(r.line, r.values) for r in rows] == [
        (1, {"a": "一"}), (4, {"a": 2}), (5, None), (6, None), (7, {"b": "二"}),
    ]  # fmt: skip
    assert rows[2].error == "a line must hold one JSON object"
    assert rows[3].error is not None and rows[3].error.startswith("not JSON")


@pytest.mark.parametrize("size", [3, 16, 1 << 16])
def test_a_line_too_long_is_refused_at_its_line_and_the_rest_keep_theirs(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(parsing, "MAX_RECORD_BYTES", 40)
    long = '{"a": "' + "x" * 60 + '"}'
    body = f'{{"a": 1}}\n{long}\n{{"a": 3}}\n{long}'.encode()
    rows = ndjson_rows(body, size)
    assert [(r.line, r.values) for r in rows] == [
        (1, {"a": 1}), (2, None), (3, {"a": 3}), (4, None),
    ]  # fmt: skip
    assert rows[1].error == rows[3].error == parsing._TOO_LONG

    csv_body = f"a,b\n1,x\n2,{'y' * 60}\n3,z\n".encode()
    rows = csv_rows(csv_body, size)
    assert [(r.line, r.values) for r in rows] == [
        (2, {"a": "1", "b": "x"}), (3, None), (4, {"a": "3", "b": "z"}),
    ]  # fmt: skip
