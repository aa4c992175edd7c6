"""Appending: committed before acknowledged, group commit, one chain across replicas, events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select, text

from libs.common.database import Database
from libs.common.events import new_event, outbox
from libs.common.events.tables import TABLES
from services.exchange.ledger import LedgerUnavailable, repository, writer
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.chain import GENESIS_HASH, entry_hash
from services.exchange.ledger.events import MAX_ENTRIES_PER_EVENT, AccessEntry, AccessesRecorded
from services.exchange.ledger.models import encode_fields, from_micros
from services.exchange.ledger.signing import VerificationKeys
from services.exchange.ledger.verification import verify_ledger
from tests.exchange.ledger.conftest import SIGNER, MakeLedger, fetch, record

KEYS = VerificationKeys([SIGNER.public_key])


async def test_append_returns_once_committed_and_chains(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    first = await ledger.append(record(1))
    second = await ledger.append(record(2, outcome="refused", reason="no-grant", fields=("x",)))
    assert (first.position, second.position) == (1, 2)
    # Visible to another connection as soon as append returned: it was committed.
    rows = await fetch(
        database,
        "SELECT position, prev_hash, entry_hash, outcome, reason, fields, recorded_at "
        "FROM exchange_ledger_entry ORDER BY position",
    )
    assert [r.position for r in rows] == [1, 2]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].entry_hash == first.entry_hash
    assert rows[1].entry_hash == second.entry_hash
    assert (rows[1].outcome, rows[1].reason, rows[1].fields) == ("refused", "no-grant", '["x"]')
    # The hash is recomputable from what is stored.
    r = record(2, outcome="refused", reason="no-grant", fields=("x",))
    content = (
        rows[1].recorded_at, r.actor, r.client_id, r.actor_org_id, r.dataset_id,
        r.owner_org_id, r.subject_ref, encode_fields(r.fields), r.purpose, r.basis_kind,
        r.basis_ref, r.outcome, r.reason, r.request_id,
    )  # fmt: skip
    assert entry_hash(2, first.entry_hash, content) == second.entry_hash


async def test_concurrent_appends_are_group_committed(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(checkpoint_every=10_000)
    receipts = await asyncio.gather(*(ledger.append(record(n)) for n in range(500)))
    assert sorted(r.position for r in receipts) == list(range(1, 501))
    assert ledger.batches < 50  # 500 appends, far fewer transactions


async def test_append_many_is_consecutive(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger()
    receipts = await ledger.append_many([record(n) for n in range(5)])
    assert [r.position for r in receipts] == [1, 2, 3, 4, 5]
    assert await ledger.append_many([]) == []


async def test_a_failed_batch_fails_every_waiter_and_commits_nothing(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = await make_ledger()
    await ledger.append(record(0))
    real_insert = repository.insert_entries

    def broken(*args: object, **kwargs: object) -> None:
        real_insert(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(repository, "insert_entries", broken)
    results = await asyncio.gather(
        *(ledger.append(record(n)) for n in range(1, 20)), return_exceptions=True
    )
    assert all(isinstance(r, LedgerUnavailable) for r in results)
    monkeypatch.setattr(repository, "insert_entries", real_insert)
    assert (await fetch(database, "SELECT count(*) AS n FROM exchange_ledger_entry"))[0].n == 1
    # The ledger goes on from the committed head.
    assert (await ledger.append(record(99))).position == 2
    assert (await verify_ledger(database.engine, KEYS)).valid


async def test_bad_records_fail_only_their_caller(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger()
    with pytest.raises(ValueError, match="basis_kind"):
        await ledger.append(record(1, basis_kind="hearsay"))
    with pytest.raises(ValueError, match="outcome"):
        await ledger.append(record(1, outcome="maybe"))
    with pytest.raises(ValueError, match="subject_ref"):
        await ledger.append(record(1, subject_ref="x" * 129))
    with pytest.raises(ValueError, match="fields"):
        await ledger.append(record(1, fields="name"))
    assert (await ledger.append(record(1))).position == 1


async def test_a_closed_ledger_refuses(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger()
    await ledger.close()
    with pytest.raises(LedgerUnavailable):
        await ledger.append(record(1))


async def test_a_full_queue_refuses_instead_of_growing(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(max_pending=10)
    with pytest.raises(LedgerUnavailable, match="behind"):
        await ledger.append_many([record(n) for n in range(11)])


async def test_replicas_appending_at_once_keep_one_chain(
    database: Database, make_ledger: MakeLedger
) -> None:
    # Three ledgers, each with its own engine and pool: three replicas of the exchange.
    replicas = [await make_ledger(own_engine=True, checkpoint_every=50) for _ in range(3)]
    per_replica = 120

    async def traffic(index: int) -> list[int]:
        ledger = replicas[index]
        receipts = await asyncio.gather(
            *(ledger.append(record(index * 1000 + n)) for n in range(per_replica))
        )
        return [r.position for r in receipts]

    positions = [p for ps in await asyncio.gather(*(traffic(i) for i in range(3))) for p in ps]
    assert sorted(positions) == list(range(1, 3 * per_replica + 1))  # no gaps, no duplicates
    report = await verify_ledger(database.engine, KEYS)
    assert report.valid, report.problem
    assert report.entries == 3 * per_replica
    assert report.checkpoints >= 3
    # Every replica's batches interleaved in one chain (none waited for the others to finish).
    assert all(r.batches >= 1 for r in replicas)


async def test_checkpoints_every_n_entries_and_on_close(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger(checkpoint_every=10, checkpoint_interval_s=3600)
    for n in range(25):
        await ledger.append(record(n))
    rows = await fetch(database, "SELECT position FROM exchange_ledger_checkpoint ORDER BY 1")
    # The first entry (no checkpoint yet), then each time 10 more have been appended.
    assert [r.position for r in rows] == [1, 11, 21]
    await ledger.close()  # signs the tail
    rows = await fetch(database, "SELECT position, key_id FROM exchange_ledger_checkpoint")
    assert sorted(r.position for r in rows) == [1, 11, 21, 25]
    assert {r.key_id for r in rows} == {SIGNER.key_id}
    report = await verify_ledger(database.engine, KEYS)
    assert report.valid and report.checkpoints == 4 and report.unsigned_entries == 0


async def test_an_idle_ledger_signs_its_head_after_the_interval(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger(checkpoint_every=1000, checkpoint_interval_s=0.2)
    await ledger.append(record(1))  # the first entry is signed with its batch (none before)
    await ledger.append(record(2))  # not yet: less than the interval since
    for _ in range(50):
        rows = await fetch(database, "SELECT max(position) AS p FROM exchange_ledger_checkpoint")
        if rows[0].p == 2:
            break
        await asyncio.sleep(0.05)
    assert rows[0].p == 2


async def _announced(database: Database) -> list[tuple[str, dict[str, Any]]]:
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(TABLES.outbox.c.subject, TABLES.outbox.c.payload).order_by(
                    TABLES.outbox.c.position
                )
            )
        ).all()
    return [(r.subject, json.loads(r.payload)) for r in rows]


async def test_a_batch_is_one_event_carrying_each_entry_without_raw_keys(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    receipt = await ledger.append(record(7, purpose="check", basis_ref="APP-7"))
    announced = await _announced(database)
    assert [subject for subject, _ in announced] == ["pingtai.exchange.access.batch_recorded"]
    event = announced[0][1]
    assert event["subject"] == f"{receipt.position}-{receipt.position}"
    data = event["data"]
    assert data["first_position"] == data["last_position"] == receipt.position
    [entry] = data["entries"]
    assert entry["position"] == receipt.position
    assert entry["entry_hash"] == receipt.entry_hash
    assert entry["subject_ref"] == f"{7:064x}"
    assert entry["fields"] == ["name", "address"]
    assert entry["purpose"] == "check" and entry["basis_ref"] == "APP-7"
    assert set(entry) >= {"actor", "client_id", "actor_org_id", "basis_kind", "outcome"}
    assert "value" not in json.dumps(data) and "record" not in entry


async def test_concurrent_appends_are_announced_once_each_in_few_events(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    receipts = await asyncio.gather(*(ledger.append(record(n)) for n in range(450)))
    announced = await _announced(database)
    # Group commit: far fewer events than entries, none above the per-event cap.
    assert len(announced) < 450
    positions = []
    for subject, event in announced:
        assert subject == "pingtai.exchange.access.batch_recorded"
        data = event["data"]
        # A range: how many entries share a commit depends on timing; any size from one to
        # the cap is right, and the positions below must still cover every entry in order.
        assert 1 <= len(data["entries"]) <= MAX_ENTRIES_PER_EVENT
        got = [e["position"] for e in data["entries"]]
        assert got == list(range(data["first_position"], data["last_position"] + 1))
        positions += got
    assert positions == sorted(r.position for r in receipts)


async def test_a_batch_larger_than_the_cap_is_announced_in_several_events(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    await ledger.append_many([record(n) for n in range(MAX_ENTRIES_PER_EVENT * 2 + 5)])
    sizes = [len(event["data"]["entries"]) for _, event in await _announced(database)]
    assert sizes == [MAX_ENTRIES_PER_EVENT, MAX_ENTRIES_PER_EVENT, 5]


def test_the_announcement_is_the_json_of_the_validated_event() -> None:
    rows = [
        {
            "position": 41 + n,
            "entry_hash": f"{n:064x}",
            # A whole second (pydantic leaves out the fraction) and a fraction.
            "recorded_at": from_micros(1_764_000_000_000_000 + n * 123_456),
            "actor": "person-17",
            "client_id": "client-1",
            "actor_org_id": None if n else "org-1",
            "dataset_id": "ds-household",
            "owner_org_id": "org-2",
            "subject_ref": None if n == 1 else f"{n:064x}",
            "fields": () if n == 2 else ("name", 'quote " 中文 \u2028 🙂'),
            "purpose": "开办企业 application",
            "basis_kind": "statute",
            "basis_ref": None,
            "outcome": "refused",
            "reason": "no-grant" if n else None,
            "request_id": None,
        }
        for n in range(3)
    ]
    [event] = writer._announcements(rows)
    expected = new_event(
        AccessesRecorded(
            first_position=41,
            last_position=43,
            entries=[AccessEntry.model_validate(row) for row in rows],
        ),
        subject="41-43",
        event_id=event.id,
        time=rows[-1]["recorded_at"],
    )
    assert event.to_json() == expected.to_json()


async def test_a_committed_batch_wakes_the_relays_and_a_failed_one_does_not(
    make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = await make_ledger()
    wakeup = asyncio.Event()
    forget = outbox.on_commit(wakeup)
    try:
        monkeypatch.setattr(repository, "insert_entries", _broken)
        with pytest.raises(LedgerUnavailable):
            await ledger.append(record(1))
        assert not wakeup.is_set()
        monkeypatch.undo()
        await ledger.append(record(2))
        assert wakeup.is_set()
    finally:
        forget()


def _broken(*_: object, **__: object) -> None:
    raise RuntimeError("disk full")


async def test_events_can_be_turned_off(database: Database, make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(access_events=False)
    await ledger.append(record(1))
    async with database.engine.connect() as conn:
        assert (await conn.execute(select(TABLES.outbox.c.subject))).all() == []


async def test_a_client_reading_many_subjects_raises_one_anomaly(
    database: Database, make_ledger: MakeLedger
) -> None:
    detector = AnomalyDetector(window_s=60, threshold=20)
    ledger = await make_ledger(access_events=False, anomaly=detector)
    await ledger.append_many([record(n) for n in range(20)])  # at the threshold: fine
    await ledger.append_many([record(n % 20) for n in range(100)])  # the same subjects again
    await ledger.append_many([record(100 + n) for n in range(30)])  # 50 distinct: over
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(TABLES.outbox.c.subject, TABLES.outbox.c.payload))).all()
    assert [r.subject for r in rows] == ["pingtai.exchange.access.anomaly"]
    data = json.loads(rows[0].payload)["data"]
    assert data["client_id"] == "client-civil-affairs"
    assert data["distinct_subjects"] == 21 and data["threshold"] == 20
    assert data["position"] == 121  # the entry that crossed the threshold


async def _turns(n: int = 20) -> None:
    """Let the event loop run other tasks (the writer) ``n`` times."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_commit_waits_for_the_queries_on_their_way(make_ledger: MakeLedger) -> None:
    # A delay no test reaches: only the siblings' arrival lets the writer commit.
    ledger = await make_ledger(commit_delay_s=3600.0, commit_siblings=1)
    first, second, third = ledger.approaching(), ledger.approaching(), ledger.approaching()
    assert ledger.on_their_way == 3
    a = asyncio.ensure_future(ledger.append(record(1), approach=first))
    await _turns()
    assert ledger.batches == 0 and not a.done()  # the writer waits for the two on their way
    b = asyncio.ensure_future(ledger.append_many([record(2), record(3)], approach=second))
    await _turns()
    assert ledger.batches == 0
    c = asyncio.ensure_future(ledger.append(record(4), approach=third))
    receipts = [await a, *(await b), await c]
    assert [r.position for r in receipts] == [1, 2, 3, 4]
    assert (ledger.batches, ledger.delayed, ledger.on_their_way) == (1, 1, 0)


async def test_a_lone_append_commits_at_once(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(commit_delay_s=3600.0, commit_siblings=1)
    with ledger.approaching() as approach:
        assert (await ledger.append(record(1), approach=approach)).position == 1
    assert (await ledger.append(record(2))).position == 2  # not counted at all
    assert (ledger.batches, ledger.delayed, ledger.on_their_way) == (2, 0, 0)


async def test_a_query_leaving_without_appending_releases_the_writer(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger(commit_delay_s=3600.0, commit_siblings=1)
    leaving = ledger.approaching()
    with ledger.approaching() as approach:
        appended = asyncio.ensure_future(ledger.append(record(1), approach=approach))
        await _turns()
        assert not appended.done()
        with leaving:  # e.g. a 404 before anything is recorded
            pass
        assert (await appended).position == 1
    leaving.arrived()  # idempotent: counted off once
    assert (ledger.batches, ledger.delayed, ledger.on_their_way) == (1, 1, 0)


async def test_fewer_siblings_than_the_setting_do_not_delay(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(commit_delay_s=3600.0, commit_siblings=2)
    with ledger.approaching():
        assert (await ledger.append(record(1))).position == 1
    assert (ledger.batches, ledger.delayed) == (1, 0)


async def test_the_delay_is_bounded(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(commit_delay_s=0.001, commit_siblings=1)
    with ledger.approaching():  # never appends while the other waits
        assert (await ledger.append(record(1))).position == 1
    assert (ledger.batches, ledger.delayed) == (1, 1)


async def test_entries_queued_together_are_siblings(make_ledger: MakeLedger) -> None:
    # Queued before the writer ran (none counted on its way): it waits its delay, then one
    # commit takes both.
    ledger = await make_ledger(commit_delay_s=0.001, commit_siblings=1)
    receipts = await asyncio.gather(ledger.append(record(1)), ledger.append(record(2)))
    assert [r.position for r in receipts] == [1, 2]
    assert (ledger.batches, ledger.delayed) == (1, 1)


async def test_an_append_made_in_the_writers_turn_shares_its_commit(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger(commit_delay_s=0.001, commit_siblings=1)
    first = asyncio.ensure_future(ledger.append(record(1)))
    await asyncio.sleep(0)  # the first appends and wakes the writer, scheduled after this task
    second = asyncio.ensure_future(ledger.append(record(2)))  # ready in the writer's turn
    assert [(await first).position, (await second).position] == [1, 2]
    assert (ledger.batches, ledger.delayed) == (1, 1)


async def test_without_a_commit_delay_a_lone_entry_does_not_wait_for_that_turn(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger(commit_delay_s=0)
    first = asyncio.ensure_future(ledger.append(record(1)))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(ledger.append(record(2)))
    assert [(await first).position, (await second).position] == [1, 2]
    assert (ledger.batches, ledger.delayed) == (2, 0)


def _close_behind_the_ledgers_back(dbapi_connection: Any) -> None:
    """Close a connection at the driver, as a server gone away would (asyncpg's is terminated;
    SQLite's closed: its next use is the driver's 'closed database' error)."""
    driver = dbapi_connection._connection
    if hasattr(driver, "terminate"):
        driver.terminate()
    else:
        driver.close()


def _disconnect_error(dialect: Any) -> Exception:
    """The error each driver raises on a connection closed under it."""
    if dialect.name == "postgresql":
        return dialect.loaded_dbapi.InterfaceError("connection is closed")  # type: ignore[no-any-return]
    return dialect.loaded_dbapi.ProgrammingError("Cannot operate on a closed database.")  # type: ignore[no-any-return]


async def _append_across_a_broken_commit(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch, *, committed: bool
) -> list[Any]:
    """One entry, then a batch of two whose first COMMIT breaks the connection (after the
    server committed, or before); its receipts."""
    ledger = await make_ledger()
    await ledger.append(record(0))
    dialect = database.engine.sync_engine.dialect
    real_commit = dialect.do_commit
    broken: list[bool] = []

    def commit_and_break(dbapi_connection: Any) -> None:
        if committed or broken:
            real_commit(dbapi_connection)
        if not broken:  # the connection breaks before the answer is seen
            broken.append(True)
            _close_behind_the_ledgers_back(dbapi_connection)
            raise _disconnect_error(dialect)

    monkeypatch.setattr(dialect, "do_commit", commit_and_break)
    receipts = await ledger.append_many([record(1), record(2)])
    monkeypatch.setattr(dialect, "do_commit", real_commit)
    assert broken and [r.position for r in receipts] == [2, 3]
    assert (await ledger.append(record(3))).position == 4
    return receipts


async def test_a_batch_whose_commit_was_lost_with_the_connection_is_not_chained_twice(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipts = await _append_across_a_broken_commit(
        database, make_ledger, monkeypatch, committed=True
    )
    rows = await fetch(database, "SELECT position, entry_hash FROM exchange_ledger_entry")
    assert sorted(tuple(r) for r in rows)[1:3] == [(r.position, r.entry_hash) for r in receipts]
    assert len(rows) == 4
    events = await fetch(database, f"SELECT count(*) AS n FROM {TABLES.outbox.name}")
    assert events[0].n == 3  # one per batch: the committed one's event was not added again
    assert (await verify_ledger(database.engine, KEYS)).valid


async def test_a_batch_failing_before_its_commit_on_a_broken_connection_is_chained_anew(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _append_across_a_broken_commit(database, make_ledger, monkeypatch, committed=False)
    assert (await fetch(database, "SELECT count(*) AS n FROM exchange_ledger_entry"))[0].n == 4
    assert (await verify_ledger(database.engine, KEYS)).valid


async def test_a_writer_connection_closed_while_idle_is_replaced_for_the_next_batch(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger()
    await ledger.append(record(0))
    assert ledger._writer is not None
    raw = await ledger._writer.get_raw_connection()
    if database.engine.dialect.name == "postgresql":  # the server ends the session
        pid = raw.dbapi_connection._connection.get_server_pid()  # type: ignore[union-attr]
        async with database.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.1)  # the termination reaches the idle connection
    else:
        _close_behind_the_ledgers_back(raw.dbapi_connection)
    assert (await ledger.append(record(1))).position == 2
    assert (await verify_ledger(database.engine, KEYS)).valid


async def test_a_cancelled_writer_answers_every_waiter(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(commit_delay_s=0.05, commit_siblings=1)
    ledger.approaching()  # one on its way: the writer waits for it with the others queued
    waiting = [asyncio.ensure_future(ledger.append(record(n))) for n in range(3)]
    await asyncio.sleep(0.01)
    assert ledger._task is not None
    ledger._task.cancel()
    async with asyncio.timeout(10):  # (a guard: unanswered, they would wait for ever)
        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, LedgerUnavailable) for r in results)
    with pytest.raises(LedgerUnavailable):
        await ledger.append(record(9))
    await ledger.close()  # no CancelledError


async def test_an_anomaly_whose_batch_failed_is_reported_again(
    database: Database, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detector keeps quiet for a window after a report; when the batch holding the
    report's event failed, nothing was stored, so the next access over the limit reports it."""
    detector = AnomalyDetector(window_s=60, threshold=5)
    ledger = await make_ledger(access_events=False, anomaly=detector)
    await ledger.append_many([record(n) for n in range(5)])  # at the threshold: fine
    real_add = outbox.add_all_on

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox, "add_all_on", broken)
    with pytest.raises(LedgerUnavailable):
        await ledger.append(record(5))  # over: found, but its batch fails
    monkeypatch.setattr(outbox, "add_all_on", real_add)
    await ledger.append(record(6))
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(TABLES.outbox.c.subject, TABLES.outbox.c.payload))).all()
    assert [r.subject for r in rows] == ["pingtai.exchange.access.anomaly"]
    assert json.loads(rows[0].payload)["data"]["position"] == 6  # the failed one left no entry
