"""The canonical encoding: fixed, unambiguous, and built the same way by the databases."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select

from libs.common.database import Database
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.chain import canonical_encoding, compact_json, entry_hash
from services.exchange.ledger.models import LedgerEntry, encode_fields
from services.exchange.ledger.repository import canonical_encoding_sql as _canonical_sql
from tests.exchange.ledger.conftest import MakeLedger, record

CONTENT = (
    1700000000000001, "p-1", "c-1", "org-1", "ds-1", "org-2", "ab" * 32, '["name","住址"]',
    "开办企业", "application", "APP-1", "granted", None, "req-1",
)  # fmt: skip


def test_the_encoding_is_compact_json_with_the_version_first() -> None:
    encoded = canonical_encoding(3, "0" * 64, CONTENT)
    assert encoded.startswith(b'[1,3,"' + b"0" * 64 + b'",1700000000000001,"p-1"')
    assert json.loads(encoded)[10] == '["name","住址"]'  # the field list's stored text, quoted
    assert "开办企业".encode() in encoded  # UTF-8, not \\u escapes
    # A known vector, so the encoding cannot drift silently.
    assert entry_hash(3, "0" * 64, CONTENT) == (
        "3448f30083087b4452727767ea7a8b7562ee0ed0fb7b32afea1a51f032aacabc"
    )


def test_values_cannot_spill_into_each_other() -> None:
    a = list(CONTENT)
    b = list(CONTENT)
    a[1], a[2] = 'p-1","c', "1"
    b[1], b[2] = "p-1", 'c","1'
    assert entry_hash(1, "0" * 64, a) != entry_hash(1, "0" * 64, b)
    c = list(CONTENT)
    c[12] = ""  # an empty reason is not an absent one
    assert entry_hash(1, "0" * 64, c) != entry_hash(1, "0" * 64, CONTENT)


def test_the_prebuilt_encoder_writes_what_json_dumps_writes() -> None:
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 nul \x00 中文 \u2028 🙂 / \ud800'
    values: list[Any] = [[], [None, 0, -1, 2**70, "", tricky], [tricky] * 3, ["a", ["b", None]]]
    for value in values:
        assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert encode_fields(("name", "住址")) == '["name","住址"]'


async def test_the_database_builds_the_same_encoding(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 nul-free 中文 \u2028 emoji 🙂 /'
    await ledger.append(record(1, purpose=tricky, reason=tricky, fields=(tricky, "b")))
    await ledger.append(record(2, actor_org_id=None, owner_org_id=None, subject_ref=None))
    dialect = database.engine.dialect.name
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(LedgerEntry.entry_hash, _canonical_sql(dialect)).order_by(
                    LedgerEntry.position
                )
            )
        ).all()
    for stored, built in rows:
        computed = built if dialect == "postgresql" else hashlib.sha256(built.encode()).hexdigest()
        assert computed == stored  # the fast path agrees; Python's re-check is only a fallback


def test_anomaly_window_slides_and_follows_the_baseline() -> None:
    detector = AnomalyDetector(window_s=10, threshold=3, baseline_factor=2)
    seen = [
        detector.observe(client_id="c", actor_org_id=None, subject_ref=f"s{n}", now=float(n))
        for n in range(4)
    ]
    assert seen[:3] == [None, None, None] and seen[3] is not None
    assert seen[3].distinct_subjects == 4
    # Reported once per window, and old reads slide out of it.
    assert detector.observe(client_id="c", actor_org_id=None, subject_ref="s9", now=5.0) is None
    assert detector.observe(client_id="c", actor_org_id=None, subject_ref="x", now=30.0) is None
    # Without a subject (a dataset-wide read) nothing is counted.
    assert detector.observe(client_id="d", actor_org_id=None, subject_ref=None, now=1.0) is None
    # A client that usually reads 10 a window gets a limit of 2 x its baseline.
    busy = AnomalyDetector(window_s=10, threshold=3, baseline_factor=2)
    for window in range(30):
        for n in range(10):
            busy.observe(
                client_id="b", actor_org_id=None, subject_ref=f"{window}-{n}", now=window * 10 + n
            )
    assert busy.limit_for("b") >= 18
