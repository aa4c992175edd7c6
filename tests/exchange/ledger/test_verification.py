"""Verification finds every kind of tampering done directly in the database, at the right entry."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.database import Database
from services.exchange.ledger import verification
from services.exchange.ledger.chain import CONTENT_COLUMNS, entry_hash
from services.exchange.ledger.signing import CheckpointSigner, VerificationKeys
from services.exchange.ledger.verification import VerificationReport, verify_ledger
from tests.exchange.ledger.conftest import SIGNER, MakeLedger, execute, fetch, record

KEYS = VerificationKeys([SIGNER.public_key])
ENTRIES = 30
COLUMNS = ", ".join(CONTENT_COLUMNS)


@pytest.fixture
async def chain(database: Database, make_ledger: MakeLedger) -> Database:
    """30 entries, one batch each; checkpoints at 1, 11, 21 and (on close) 30."""
    ledger = await make_ledger(checkpoint_every=10, checkpoint_interval_s=3600)
    for n in range(ENTRIES):
        await ledger.append(record(n))
    await ledger.close()
    return database


async def verify(database: Database, **kwargs: Any) -> VerificationReport:
    return await verify_ledger(database.engine, kwargs.pop("keys", KEYS), **kwargs)


async def row(database: Database, position: int) -> Any:
    rows = await fetch(
        database,
        f"SELECT position, prev_hash, entry_hash, {COLUMNS} FROM exchange_ledger_entry "
        "WHERE position = :p",
        p=position,
    )
    return rows[0]


def content_of(stored: Any, **changes: Any) -> tuple[Any, ...]:
    return tuple(changes.get(name, getattr(stored, name)) for name in CONTENT_COLUMNS)


async def rehash(database: Database, position: int, prev_hash: str) -> str:
    """Recompute an entry's hash over ``prev_hash`` as a careful intruder would; its new hash."""
    stored = await row(database, position)
    digest = entry_hash(position, prev_hash, content_of(stored))
    await execute(
        database,
        "UPDATE exchange_ledger_entry SET prev_hash = :prev, entry_hash = :h WHERE position = :p",
        prev=prev_hash,
        h=digest,
        p=position,
    )
    return digest


async def shift(database: Database, *, from_position: int, by: int) -> None:
    """Renumber entries from ``from_position`` on (in two steps: positions are unique)."""
    await execute(
        database,
        "UPDATE exchange_ledger_entry SET position = position + 1000000 WHERE position >= :p",
        p=from_position,
    )
    await execute(
        database,
        "UPDATE exchange_ledger_entry SET position = position - 1000000 + :by "
        "WHERE position >= 1000000",
        by=by,
    )


async def insert(database: Database, position: int, prev_hash: str, digest: str) -> None:
    forged = record(999, actor="intruder", purpose="cover story")
    await execute(
        database,
        f"INSERT INTO exchange_ledger_entry (position, prev_hash, entry_hash, {COLUMNS}) "
        "VALUES (:position, :prev, :h, 1700000000000000, :actor, :client_id, :actor_org_id, "
        ":dataset_id, :owner_org_id, :subject_ref, '[\"name\"]', :purpose, :basis_kind, "
        ":basis_ref, :outcome, NULL, NULL)",
        position=position,
        prev=prev_hash,
        h=digest,
        actor=forged.actor,
        client_id=forged.client_id,
        actor_org_id=forged.actor_org_id,
        dataset_id=forged.dataset_id,
        owner_org_id=forged.owner_org_id,
        subject_ref=forged.subject_ref,
        purpose=forged.purpose,
        basis_kind=forged.basis_kind,
        basis_ref=forged.basis_ref,
        outcome=forged.outcome,
    )


def forged_hash(position: int, prev_hash: str) -> str:
    forged = record(999, actor="intruder", purpose="cover story")
    content = (
        1700000000000000, forged.actor, forged.client_id, forged.actor_org_id,
        forged.dataset_id, forged.owner_org_id, forged.subject_ref, '["name"]', forged.purpose,
        forged.basis_kind, forged.basis_ref, forged.outcome, None, None,
    )  # fmt: skip
    return entry_hash(position, prev_hash, content)


def assert_tampered(report: VerificationReport, kind: str, position: int) -> None:
    assert not report.valid
    assert report.problem is not None
    assert (report.problem.kind, report.problem.position) == (kind, position), report.problem


async def test_an_untouched_ledger_verifies(chain: Database) -> None:
    report = await verify(chain)
    assert report.valid, report.problem
    assert (report.entries, report.head_position, report.checkpoints) == (ENTRIES, ENTRIES, 4)
    assert report.last_checkpoint_position == ENTRIES and report.unsigned_entries == 0


async def test_awkward_values_verify_on_the_fast_path(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database's encoding (bytes as stored on SQLite) must equal Python's for every value,
    # or each such entry would cost a re-read and a re-encoding in Python.
    ledger = await make_ledger()
    awkward = 'quote " backslash \\ newline \n tab \t bell \x07 中文 \u2028 emoji 🙂 /'
    await ledger.append(record(1, purpose=awkward, reason=awkward, fields=(awkward, "b")))
    await ledger.append(record(2, actor_org_id=None, owner_org_id=None, subject_ref=None))
    await ledger.close()

    async def no_recheck(*_: Any) -> None:
        raise AssertionError("an entry left the fast path")

    monkeypatch.setattr(verification, "_row_at", no_recheck)
    report = await verify(database)
    assert report.valid and report.entries == 2, report.problem


async def test_an_empty_ledger_verifies(database: Database) -> None:
    report = await verify(database)
    assert report.valid and report.entries == 0


@pytest.mark.parametrize("batch_size", [100, 7])  # also across the walk's batch boundaries
async def test_a_changed_field(chain: Database, batch_size: int) -> None:
    await execute(chain, "UPDATE exchange_ledger_entry SET purpose = 'nothing' WHERE position = 12")
    assert_tampered(await verify(chain, batch_size=batch_size), "altered", 12)


async def test_a_changed_field_list_and_time(chain: Database) -> None:
    await execute(chain, "UPDATE exchange_ledger_entry SET fields = '[]' WHERE position = 5")
    await execute(
        chain, "UPDATE exchange_ledger_entry SET recorded_at = recorded_at + 1 WHERE position = 3"
    )
    assert_tampered(await verify(chain), "altered", 3)


async def test_a_changed_field_whose_hash_was_recomputed(chain: Database) -> None:
    await execute(chain, "UPDATE exchange_ledger_entry SET outcome = 'refused' WHERE position = 12")
    await rehash(chain, 12, (await row(chain, 11)).entry_hash)
    report = await verify(chain)
    assert_tampered(report, "altered", 12)
    assert report.problem is not None and "recomputed" in report.problem.detail


async def test_a_rewritten_stretch_is_caught_by_the_next_checkpoint(chain: Database) -> None:
    # The intruder alters entry 14 and re-chains everything after it, head included: every
    # hash is consistent again, but checkpoint 21 signed the old chain.
    await execute(chain, "UPDATE exchange_ledger_entry SET actor = 'someone' WHERE position = 14")
    prev = (await row(chain, 13)).entry_hash
    for position in range(14, ENTRIES + 1):
        prev = await rehash(chain, position, prev)
    await execute(chain, "UPDATE exchange_ledger_head SET entry_hash = :h", h=prev)
    report = await verify(chain)
    assert_tampered(report, "altered", 12)  # somewhere after checkpoint 11, up to 21
    assert report.problem is not None and "checkpoint 21" in report.problem.detail


async def test_a_removed_entry(chain: Database) -> None:
    await execute(chain, "DELETE FROM exchange_ledger_entry WHERE position = 15")
    assert_tampered(await verify(chain), "removed", 15)


async def test_a_removed_entry_with_the_rest_renumbered(chain: Database) -> None:
    await execute(chain, "DELETE FROM exchange_ledger_entry WHERE position = 15")
    await shift(chain, from_position=16, by=-1)
    await execute(chain, "UPDATE exchange_ledger_head SET position = position - 1")
    assert_tampered(await verify(chain), "removed", 15)


@pytest.mark.parametrize("well_forged", [True, False])
async def test_an_inserted_entry(chain: Database, well_forged: bool) -> None:
    prev = (await row(chain, 14)).entry_hash
    await shift(chain, from_position=15, by=1)
    await execute(chain, "UPDATE exchange_ledger_head SET position = position + 1")
    await insert(chain, 15, prev, forged_hash(15, prev) if well_forged else "f" * 64)
    assert_tampered(await verify(chain), "inserted", 15)


async def test_an_entry_appended_beyond_the_head(chain: Database) -> None:
    prev = (await row(chain, ENTRIES)).entry_hash
    await insert(chain, ENTRIES + 1, prev, forged_hash(ENTRIES + 1, prev))
    assert_tampered(await verify(chain), "inserted", ENTRIES + 1)


async def swap(database: Database, a: int, b: int) -> None:
    """Exchange two entries' places (each keeps its content, prev_hash and hash)."""
    await execute(
        database, "UPDATE exchange_ledger_entry SET position = -1 WHERE position = :a", a=a
    )
    await execute(
        database, "UPDATE exchange_ledger_entry SET position = :a WHERE position = :b", a=a, b=b
    )
    await execute(
        database, "UPDATE exchange_ledger_entry SET position = :b WHERE position = -1", b=b
    )


@pytest.mark.parametrize(("a", "b"), [(15, 16), (13, 17)])
async def test_swapped_entries(chain: Database, a: int, b: int) -> None:
    await swap(chain, a, b)
    assert_tampered(await verify(chain), "reordered", a)


async def test_an_altered_checkpoint_signature(chain: Database) -> None:
    stored = (
        await fetch(chain, "SELECT signature FROM exchange_ledger_checkpoint WHERE position = 11")
    )[0]
    flipped = ("A" if stored.signature[0] != "A" else "B") + stored.signature[1:]
    await execute(
        chain,
        "UPDATE exchange_ledger_checkpoint SET signature = :s WHERE position = 11",
        s=flipped,
    )
    report = await verify(chain)
    assert_tampered(report, "checkpoint", 11)
    assert report.problem is not None and "does not verify" in report.problem.detail


async def test_a_checkpoint_moved_to_another_hash(chain: Database) -> None:
    other = (await row(chain, 10)).entry_hash
    await execute(
        chain, "UPDATE exchange_ledger_checkpoint SET entry_hash = :h WHERE position = 11", h=other
    )
    assert_tampered(await verify(chain), "checkpoint", 11)


async def test_the_tail_truncated_after_a_checkpoint(chain: Database) -> None:
    # Entries after checkpoint 21 deleted; checkpoint 30 still says the chain reached 30.
    await execute(chain, "DELETE FROM exchange_ledger_entry WHERE position > 21")
    await execute(chain, "UPDATE exchange_ledger_head SET position = 21")
    assert_tampered(await verify(chain), "removed", 22)


async def test_the_tail_truncated_and_the_head_left(chain: Database) -> None:
    await execute(chain, "DELETE FROM exchange_ledger_entry WHERE position > 25")
    await execute(chain, "DELETE FROM exchange_ledger_checkpoint WHERE position = 30")
    assert_tampered(await verify(chain), "removed", 26)


async def test_a_truncation_that_also_rewinds_head_and_checkpoints_is_the_documented_limit(
    chain: Database,
) -> None:
    # Deleting unsigned entries, their checkpoint and winding the head back leaves a shorter
    # chain that is valid in itself: only a checkpoint or receipt kept outside shows it.
    await execute(chain, "DELETE FROM exchange_ledger_entry WHERE position > 21")
    await execute(chain, "DELETE FROM exchange_ledger_checkpoint WHERE position > 21")
    head = (await row(chain, 21)).entry_hash
    await execute(chain, "UPDATE exchange_ledger_head SET position = 21, entry_hash = :h", h=head)
    report = await verify(chain)
    assert report.valid and report.head_position == 21


async def test_a_deleted_head_row(chain: Database) -> None:
    await execute(chain, "DELETE FROM exchange_ledger_head")
    assert_tampered(await verify(chain), "removed", ENTRIES + 1)


async def test_checkpoints_of_a_former_key_verify_when_it_is_still_trusted(
    database: Database, make_ledger: MakeLedger
) -> None:
    old = CheckpointSigner(Ed25519PrivateKey.generate())
    ledger = await make_ledger(signer=old, checkpoint_every=5)
    await ledger.append_many([record(n) for n in range(5)])
    await ledger.close()
    ledger = await make_ledger(checkpoint_every=5)  # the new key: SIGNER
    await ledger.append_many([record(n) for n in range(5, 10)])
    await ledger.close()
    keys = await fetch(database, "SELECT DISTINCT key_id FROM exchange_ledger_checkpoint")
    assert {k.key_id for k in keys} == {old.key_id, SIGNER.key_id}
    both = VerificationKeys([SIGNER.public_key, old.public_key])
    assert (await verify(database, keys=both)).valid
    report = await verify(database, keys=KEYS)  # the old key forgotten
    assert_tampered(report, "checkpoint", 5)
    assert report.problem is not None and "not one of the trusted keys" in report.problem.detail


async def test_a_value_of_the_wrong_type(chain: Database) -> None:
    if chain.engine.dialect.name != "sqlite":
        # Not a hidden failure: PostgreSQL's typed columns refuse the UPDATE itself, so this
        # tampering cannot happen there (the other kinds run on both backends).
        pytest.skip("only SQLite lets a column hold another type")
    await execute(chain, "UPDATE exchange_ledger_entry SET actor = X'00ff' WHERE position = 9")
    assert_tampered(await verify(chain), "altered", 9)


@pytest.mark.parametrize("column", ["purpose", "entry_hash", "prev_hash", "recorded_at"])
@pytest.mark.parametrize("batch_size", [3, 1000])
async def test_text_that_is_not_utf8(chain: Database, column: str, batch_size: int) -> None:
    if chain.engine.dialect.name != "sqlite":
        # Not a hidden failure: PostgreSQL refuses text that is not valid UTF-8 itself.
        pytest.skip("only SQLite lets a column hold bytes that are not UTF-8 as text")
    await execute(
        chain,
        f"UPDATE exchange_ledger_entry SET {column} = CAST(X'ff41' AS TEXT) WHERE position = 5",
    )
    assert_tampered(await verify(chain, batch_size=batch_size), "altered", 5)


@pytest.mark.parametrize(
    ("table", "column", "kind"),
    [
        ("exchange_ledger_head", "entry_hash", "removed"),  # the head names no entry of the chain
        ("exchange_ledger_checkpoint", "entry_hash", "checkpoint"),
        ("exchange_ledger_checkpoint", "key_id", "checkpoint"),
        ("exchange_ledger_checkpoint", "signature", "checkpoint"),
        ("exchange_ledger_checkpoint", "signed_at", "checkpoint"),  # part of the signed message
    ],
)
async def test_text_that_is_not_utf8_in_the_head_or_a_checkpoint(
    chain: Database, table: str, column: str, kind: str
) -> None:
    if chain.engine.dialect.name != "sqlite":
        # Not a hidden failure: PostgreSQL refuses text that is not valid UTF-8 itself.
        pytest.skip("only SQLite lets a column hold bytes that are not UTF-8 as text")
    where = "id = 1" if table == "exchange_ledger_head" else "position = 11"
    await execute(chain, f"UPDATE {table} SET {column} = CAST(X'ff41' AS TEXT) WHERE {where}")
    report = await verify(chain)
    assert_tampered(report, kind, ENTRIES + 1 if kind == "removed" else 11)
    report.head_hash.encode()  # printable (the CLI's and the endpoint's JSON)


async def test_progress_is_reported(chain: Database) -> None:
    seen: list[tuple[int, int]] = []
    await verify(chain, batch_size=8, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (ENTRIES, ENTRIES) and len(seen) == 4


# The chain fixture's writer signs every 10 entries, one entry per batch: it never leaves more
# than checkpoint_every + max_batch = 11 entries unsigned.
GAP = 11


async def test_history_rewritten_with_every_checkpoint_deleted_is_caught(chain: Database) -> None:
    # The intruder alters entry 5, re-chains everything after it, fixes the head and deletes
    # the checkpoints that would betray the rewrite: the chain itself is consistent again.
    await execute(chain, "UPDATE exchange_ledger_entry SET actor = 'someone' WHERE position = 5")
    prev = (await row(chain, 4)).entry_hash
    for position in range(5, ENTRIES + 1):
        prev = await rehash(chain, position, prev)
    await execute(chain, "UPDATE exchange_ledger_head SET entry_hash = :h", h=prev)
    await execute(chain, "DELETE FROM exchange_ledger_checkpoint")
    assert (await verify(chain)).valid  # without the writer's bound, nothing betrays it
    report = await verify(chain, max_checkpoint_gap=GAP)
    assert_tampered(report, "checkpoint", 1)
    assert report.problem is not None and "a checkpoint was removed" in report.problem.detail


async def test_a_checkpoint_deleted_between_two_others_is_caught(chain: Database) -> None:
    await execute(chain, "DELETE FROM exchange_ledger_checkpoint WHERE position = 11")
    assert_tampered(await verify(chain, max_checkpoint_gap=GAP), "checkpoint", 2)


async def test_the_writers_own_gaps_verify(chain: Database) -> None:
    assert (await verify(chain, max_checkpoint_gap=GAP)).valid


@pytest.mark.parametrize("stored", ["'abc'", "CAST(X'ff41' AS TEXT)"])
async def test_another_head_hash_on_an_empty_chain(
    database: Database, make_ledger: MakeLedger, stored: str
) -> None:
    if "X'" in stored and database.engine.dialect.name != "sqlite":
        # Not a hidden failure: PostgreSQL refuses text that is not valid UTF-8 itself (the
        # foreign but valid hash runs on both backends).
        pytest.skip("only SQLite lets a column hold bytes that are not UTF-8 as text")
    ledger = await make_ledger()
    await ledger.close()
    assert (await verify(database)).valid
    await execute(database, f"UPDATE exchange_ledger_head SET entry_hash = {stored}")
    report = await verify(database)
    assert_tampered(report, "removed", 1)
    report.head_hash.encode()  # printable (the CLI's and the endpoint's JSON)
