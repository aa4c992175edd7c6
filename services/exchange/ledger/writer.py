"""The ledger: appends accesses to the hash chain by group commit, and signs checkpoints.

``append`` puts a record in a queue and waits. One writer task per process takes everything
queued (up to ``max_batch``), locks the chain head, chains the records, inserts them, their
events and a checkpoint when one is due, and commits — one transaction for the whole batch —
then answers every waiter. Nothing is acknowledged before the commit; a failed transaction
fails every waiter of its batch.

Commit delay with siblings (PostgreSQL's ``commit_delay``/``commit_siblings``): a query counts
itself from its admission until it appends (``approaching``). When at least
``commit_siblings`` other queries are on their way or already queued, the writer waits (at
most ``commit_delay_s``, less once those on their way have appended) before it takes a batch,
so one commit carries more entries. An entry alone commits at once, after one turn of the
event loop: the requests that turn runs append first, and are its siblings (a wait only when
the server is busy; ``commit_delay_s`` 0 turns this off too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.database import Database
from libs.common.errors import PingtaiError
from libs.common.events import CloudEvent, new_event, outbox
from libs.common.events.envelope import new_event_unchecked
from services.exchange.ledger import repository
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.chain import entry_hash
from services.exchange.ledger.events import (
    MAX_ENTRIES_PER_EVENT,
    AccessAnomaly,
    AccessesRecorded,
)
from services.exchange.ledger.models import encode_fields, from_micros
from services.exchange.ledger.records import AccessRecord, LedgerReceipt
from services.exchange.ledger.signing import CheckpointSigner

logger = logging.getLogger(__name__)


class LedgerUnavailable(PingtaiError):
    """The access could not be recorded, so it must not be served."""

    status = 503
    code = "ledger-unavailable"
    title = "The access ledger cannot record this access now"


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """How the writer batches, and when it signs a checkpoint."""

    max_batch: int = 1000
    max_pending: int = 50_000
    checkpoint_every: int = 1000
    checkpoint_interval_s: float = 60.0
    access_events: bool = True  # announce each batch's entries (access.batch_recorded)
    commit_delay_s: float = 0.001  # wait at most this long for queries on their way ...
    commit_siblings: int = 1  # ... when at least this many are (0 s: never wait)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the chain's head."""

    position: int
    entry_hash: str
    signed_at: datetime
    key_id: str
    signature: str


def _now_us() -> int:
    return time.time_ns() // 1000


# A queued append: the record, when it was recorded (µs), and who waits for its receipt.
_Pending = tuple[AccessRecord, int, "asyncio.Future[LedgerReceipt]"]


class Approach:
    """A query on its way to the ledger, counted from its admission until it appends (or
    leaves without appending); ``Ledger.approaching`` makes one, a context manager."""

    __slots__ = ("_ledger", "_open")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._open = True

    def __enter__(self) -> Approach:
        return self

    def __exit__(self, *_: object) -> None:
        self.arrived()

    def arrived(self) -> None:
        """No longer on its way (idempotent)."""
        if self._open:
            self._open = False
            self._ledger._arrived()


def _locked_head(connection: Connection) -> repository.Head:
    head = repository.lock_head(connection)
    if head is None:
        raise LedgerUnavailable("The ledger's head row is missing; run the migrations.")
    return head


class Ledger:
    """The exchange's access ledger; one per app, on ``app.state.ledger``."""

    def __init__(
        self,
        database: Database,
        *,
        signer: CheckpointSigner,
        config: LedgerConfig | None = None,
        anomaly: AnomalyDetector | None = None,
    ) -> None:
        self.database = database
        self.signer = signer
        self.config = config or LedgerConfig()
        self.anomaly = anomaly
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The idle writer's timer: a timed checkpoint once an interval passed (``_ticked``).
        self._tick: asyncio.TimerHandle | None = None
        self._ticked_off = False
        self._closing = False
        self._writer: AsyncConnection | None = None
        self._sent: list[LedgerReceipt] | None = None  # the receipts of the batch committing
        self._reported: list[str] = []  # clients the batch being written reported (anomaly)
        self._batch: Sequence[_Pending] = ()  # the batch being written
        self._approaching = 0  # queries admitted that have not appended yet
        self._siblings_in = asyncio.Event()  # set when none is on its way any more
        self.batches = 0  # committed batches, for tests and metrics
        self.delayed = 0  # batches whose writer waited for queries on their way

    async def start(self) -> None:
        """Create the chain's head if the database has none and start the writer."""
        async with self.database.sessionmaker() as session, session.begin():
            await repository.ensure_head(session)
        self._task = asyncio.create_task(self._run(), name="exchange-ledger-writer")

    async def close(self) -> None:
        """Write what is queued, sign the tail, stop the writer."""
        self._closing = True
        self._wakeup.set()
        self._siblings_in.set()  # no commit delay while draining
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling()):
                    raise  # close itself was cancelled
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        await self._drop_connection()
        with contextlib.suppress(Exception):
            await self.checkpoint()
        logger.info(
            "ledger closed: %d group commits, %d of them waited for siblings (commit delay)",
            self.batches,
            self.delayed,
        )

    def approaching(self) -> Approach:
        """Count a query on its way to appending (see the module's commit delay); pass it to
        ``append``/``append_many``, and leave its ``with`` on every other way out."""
        self._approaching += 1
        return Approach(self)

    @property
    def on_their_way(self) -> int:
        """Queries counted by ``approaching`` that have not appended (or left) yet."""
        return self._approaching

    def _arrived(self) -> None:
        self._approaching -= 1
        if self._approaching <= 0:
            self._siblings_in.set()

    async def append(
        self, record: AccessRecord, *, approach: Approach | None = None
    ) -> LedgerReceipt:
        """Append one access; returns once its entry is committed."""
        return await self._enqueue([record], approach)[0]

    async def append_many(
        self, records: Sequence[AccessRecord], *, approach: Approach | None = None
    ) -> list[LedgerReceipt]:
        """Append several accesses (consecutive unless the queue splits them); once committed."""
        if not records:
            if approach is not None:
                approach.arrived()
            return []
        futures = self._enqueue(records, approach)
        if len(futures) == 1:  # a single fetch: no gathering future
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _enqueue(
        self, records: Sequence[AccessRecord], approach: Approach | None
    ) -> list[asyncio.Future[LedgerReceipt]]:
        if approach is not None:
            approach.arrived()
        for record in records:
            record.check()
        if self._closing or self._task is None or self._task.done():
            raise LedgerUnavailable("The access ledger is not running.")
        if len(self._pending) + len(records) > self.config.max_pending:
            raise LedgerUnavailable("The access ledger is behind; try again shortly.")
        loop = asyncio.get_running_loop()
        now = _now_us()
        futures: list[asyncio.Future[LedgerReceipt]] = []
        for record in records:
            future: asyncio.Future[LedgerReceipt] = loop.create_future()
            self._pending.append((record, now, future))
            futures.append(future)
        self._wakeup.set()
        if len(self._pending) >= self.config.max_batch:
            self._siblings_in.set()  # a full batch waits for no one
        return futures

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now unless a checkpoint already covers it."""
        async with self.database.engine.begin() as connection:
            return await connection.run_sync(self._checkpoint_head, only_if_due=False)

    def _ticked(self) -> None:
        self._tick = None
        self._ticked_off = True  # a timed checkpoint (if due) when the writer is next idle
        self._wakeup.set()

    async def _run(self) -> None:
        try:
            await self._serve()
        except BaseException as exc:
            # Cancelled (or broken): every waiter queued or in flight is answered, none hangs.
            waiting, self._pending = [*self._batch, *self._pending], []
            self._batch = ()
            _fail(waiting, "The access ledger stopped.", exc)
            raise

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                if self._ticked_off:
                    self._ticked_off = False
                    await self._timed_checkpoint()
                    continue
                self._wakeup.clear()
                if self._tick is None:
                    # One timer an interval, not one armed and cancelled per idle wait (a
                    # busy writer idles between most of its commits).
                    self._tick = loop.call_later(self.config.checkpoint_interval_s, self._ticked)
                await self._wakeup.wait()
                continue
            if len(self._pending) == 1 and self.config.commit_delay_s > 0 and not self._closing:
                # One turn of the loop first: requests this turn already runs append too and
                # are siblings then (on an idle server nothing else runs: no wait). At 1,000
                # fetches/s: 2.9-3.1 -> 4.3-5.0 entries a commit, ~10 % less CPU a fetch.
                await asyncio.sleep(0)
            # Siblings: queries on their way, and the entries queued besides the first (the
            # server is busy: more are likely to come within the delay).
            siblings = self._approaching + len(self._pending) - 1
            if (
                self.config.commit_delay_s > 0
                and siblings >= self.config.commit_siblings
                and len(self._pending) < self.config.max_batch
                and not self._closing
            ):
                await self._await_siblings()
            batch = self._batch = self._pending[: self.config.max_batch]
            del self._pending[: self.config.max_batch]
            try:
                receipts = await self._write(batch)
            except Exception as exc:
                logger.exception("ledger batch of %d entries failed", len(batch))
                _fail(batch, "The access could not be recorded.", exc)
                continue
            self.batches += 1
            for (_, _, future), receipt in zip(batch, receipts, strict=True):
                if not future.done():
                    future.set_result(receipt)

    async def _await_siblings(self) -> None:
        """Wait until the queries on their way have appended, at most ``commit_delay_s`` (all
        of it when none is on its way and the siblings are entries already queued)."""
        self.delayed += 1
        self._siblings_in.clear()
        # The delay ends the wait by setting the event: a bare timer, not asyncio.timeout's
        # task lookup and rescheduling (half the commits wait, at 1,000 fetches/s).
        timer = asyncio.get_running_loop().call_later(
            self.config.commit_delay_s, self._siblings_in.set
        )
        try:
            await self._siblings_in.wait()
        finally:
            timer.cancel()

    async def _timed_checkpoint(self) -> None:
        try:
            async with self.database.engine.begin() as connection:
                await connection.run_sync(self._checkpoint_head, only_if_due=True)
        except Exception:
            logger.exception("ledger checkpoint failed")

    def _checkpoint_head(self, connection: Connection, *, only_if_due: bool) -> Checkpoint | None:
        """Sign the (locked) head unless a checkpoint covers it, or is not yet due."""
        head = _locked_head(connection)
        if head.position <= head.last_checkpoint_position:
            return None
        if only_if_due and not self._checkpoint_due(head, head.position, _now_us()):
            return None
        return self._sign_head(connection, head.position, head.entry_hash)

    def _checkpoint_due(self, head: repository.Head, position: int, now_us: int) -> bool:
        since = position - head.last_checkpoint_position
        if since <= 0:
            return False
        if since >= self.config.checkpoint_every:
            return True
        last = head.last_checkpoint_at_us
        return last is None or now_us - last >= self.config.checkpoint_interval_s * 1_000_000

    def _sign_head(self, connection: Connection, position: int, head_hash: str) -> Checkpoint:
        """Insert a checkpoint of ``position`` and record it in the (locked) head row."""
        signed_at_us = _now_us()
        signature = self.signer.sign(
            position=position, entry_hash=head_hash, signed_at_us=signed_at_us
        )
        checkpoint = Checkpoint(
            position=position,
            entry_hash=head_hash,
            signed_at=from_micros(signed_at_us),
            key_id=self.signer.key_id,
            signature=signature,
        )
        repository.insert_checkpoint(
            connection,
            {
                "position": position,
                "entry_hash": head_hash,
                "signed_at": checkpoint.signed_at,
                "key_id": checkpoint.key_id,
                "signature": signature,
            },
        )
        repository.move_head(
            connection,
            position=position,
            entry_hash=head_hash,
            last_checkpoint_position=position,
            last_checkpoint_at=checkpoint.signed_at,
        )
        return checkpoint

    async def _write(self, batch: Sequence[_Pending]) -> list[LedgerReceipt]:
        """One transaction for the batch, begin to commit in one greenlet trip.

        On the writer's own connection, kept from batch to batch: a session and a pool
        checkout per batch (the return's reset, PostgreSQL's pre-ping) cost about a sixth of a
        one-entry batch's CPU. A connection found broken (SQLAlchemy's invalidation, or the
        driver's own disconnect error from a direct statement) is dropped and the batch tried
        once more on a new one. The break may have come after the COMMIT was sent, and the
        server may have committed: so the retry, once it holds the head's lock, first looks
        for the batch's last entry as the failed attempt chained it (its position and hash);
        found, the batch committed (its events with it) and its receipts are answered; else
        nothing of it was committed and it is chained anew."""
        sent: list[LedgerReceipt] | None = None
        for attempt in range(2):
            connection = await self._connection()
            self._sent = None
            self._reported = []
            try:
                return await connection.run_sync(self._commit_batch, batch, sent)
            except Exception as error:
                self._withdraw_reports()
                broken = not attempt and self._broken(connection, error)
                await self._drop_connection()
                if not broken:
                    raise
                sent = self._sent  # chained, and maybe committed, by the failed attempt
                logger.warning("ledger connection broken (%s); batch tried again", error)
            except BaseException:
                self._withdraw_reports()
                await self._drop_connection()
                raise
        raise AssertionError("unreachable")

    def _withdraw_reports(self) -> None:
        """The anomalies the failed attempt found were not stored (or, after a break during
        COMMIT, maybe were: then one may be reported once more): the detector reports them
        again at the next access over the limit instead of keeping quiet for their window."""
        if self.anomaly is not None:
            for client_id in self._reported:
                self.anomaly.withdraw(client_id)
        self._reported = []

    def _broken(self, connection: AsyncConnection, error: Exception) -> bool:
        """Whether ``error`` says the connection is gone (not the statement refused)."""
        if isinstance(error, DBAPIError):
            return error.connection_invalidated
        dialect = connection.dialect
        if not isinstance(error, dialect.loaded_dbapi.Error):
            return False
        try:
            raw = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        except Exception:
            raw = None
        return bool(dialect.is_disconnect(error, raw, None))

    def _commit_batch(
        self,
        connection: Connection,
        batch: Sequence[_Pending],
        sent: list[LedgerReceipt] | None,
    ) -> list[LedgerReceipt]:
        """The batch's transaction on a Core connection, no ORM session: the chain's
        statements, then the batch's events into the outbox (the same transaction), commit;
        the relays are woken once it committed. (Through an ``AsyncSession`` — its begin and
        commit bookkeeping, the outbox's own greenlet trip — it cost ≈ 25 % more CPU.)

        ``sent``: the receipts a failed attempt chained (see ``_write``); when its last entry
        is stored as chained, the batch committed then and nothing is written again."""
        with connection.begin():
            head = _locked_head(connection)
            if sent and repository.entry_hash_at(connection, sent[-1].position) == (
                sent[-1].entry_hash
            ):
                outbox.wake_relays()  # its events committed with it
                return sent
            receipts, announced, events = self._chain(connection, head, batch)
            events.extend(_announcements(announced))
            outbox.add_all_on(connection, events)
            self._sent = receipts  # from here the COMMIT may happen whatever is raised
        if events:
            outbox.wake_relays()
        return receipts

    async def _connection(self) -> AsyncConnection:
        """The writer's connection (detached from the pool, so the pool's count is the
        requests' and no request can take it)."""
        if self._writer is None:
            connection = await self.database.engine.connect()
            (await connection.get_raw_connection()).detach()
            self._writer = connection
        return self._writer

    async def _drop_connection(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()

    def _chain(
        self, connection: Connection, head: repository.Head, batch: Sequence[_Pending]
    ) -> tuple[list[LedgerReceipt], list[dict[str, Any]], list[CloudEvent]]:
        """Chain and insert the batch's entries after the (locked) head, move the head (signing
        it when a checkpoint is due); the receipts, the entries to announce (none when events
        are off) and any anomaly events."""
        position, prev = head.position, head.entry_hash
        rows: list[tuple[Any, ...]] = []
        announced: list[dict[str, Any]] = []
        receipts: list[LedgerReceipt] = []
        events: list[CloudEvent] = []
        announce = self.config.access_events
        for record, recorded_us, _ in batch:
            position += 1
            content = (
                recorded_us,
                record.actor,
                record.client_id,
                record.actor_org_id,
                record.dataset_id,
                record.owner_org_id,
                record.subject_ref,
                encode_fields(record.fields),
                record.purpose,
                record.basis_kind,
                record.basis_ref,
                record.outcome,
                record.reason,
                record.request_id,
            )
            digest = entry_hash(position, prev, content)
            rows.append((position, *content, prev, digest))  # repository.ENTRY_COLUMNS
            receipts.append(LedgerReceipt(position=position, entry_hash=digest))
            if announce or self.anomaly is not None:
                recorded_at = from_micros(recorded_us)
                if announce:
                    announced.append(_announced_entry(record, position, digest, recorded_at))
                anomaly = self._anomaly(record, position, recorded_at)
                if anomaly is not None:
                    events.append(anomaly)
            prev = digest
        repository.insert_entries(connection, rows)
        if self._checkpoint_due(head, position, _now_us()):
            self._sign_head(connection, position, prev)
        else:
            repository.move_head(
                connection,
                position=position,
                entry_hash=prev,
                last_checkpoint_position=head.last_checkpoint_position,
                last_checkpoint_at=(
                    None
                    if head.last_checkpoint_at_us is None
                    else from_micros(head.last_checkpoint_at_us)
                ),
            )
        return receipts, announced, events

    def _anomaly(
        self, record: AccessRecord, position: int, recorded_at: datetime
    ) -> CloudEvent | None:
        if self.anomaly is None:
            return None
        finding = self.anomaly.observe(
            client_id=record.client_id,
            actor_org_id=record.actor_org_id,
            subject_ref=record.subject_ref,
            now=recorded_at.timestamp(),
        )
        if finding is None:
            return None
        self._reported.append(finding.client_id)
        anomaly = AccessAnomaly(
            client_id=finding.client_id,
            actor_org_id=finding.actor_org_id,
            distinct_subjects=finding.distinct_subjects,
            window_s=finding.window_s,
            threshold=finding.threshold,
            baseline=finding.baseline,
            position=position,
            detected_at=datetime.now(UTC),
        )
        return new_event(anomaly, subject=finding.client_id)


def _fail(waiting: Sequence[_Pending], message: str, cause: BaseException) -> None:
    """Answer each waiter not yet answered with ``LedgerUnavailable`` (caused by ``cause``)."""
    for _, _, future in waiting:
        if not future.done():
            error = LedgerUnavailable(message)
            error.__cause__ = cause
            future.set_exception(error)


def _announced_entry(
    record: AccessRecord, position: int, digest: str, recorded_at: datetime
) -> dict[str, Any]:
    """An ``AccessEntry``'s fields, in its order, as the model would hold them."""
    return {
        "position": position,
        "entry_hash": digest,
        "recorded_at": recorded_at,
        "actor": record.actor,
        "client_id": record.client_id,
        "actor_org_id": record.actor_org_id,
        "dataset_id": record.dataset_id,
        "owner_org_id": record.owner_org_id,
        "subject_ref": record.subject_ref,
        "fields": record.fields,
        "purpose": record.purpose,
        "basis_kind": record.basis_kind,
        "basis_ref": record.basis_ref,
        "outcome": record.outcome,
        "reason": record.reason,
        "request_id": record.request_id,
    }


def _announcements(entries: Sequence[dict[str, Any]]) -> list[CloudEvent]:
    """``access.batch_recorded`` events for a batch's entries (``_announced_entry``): one per
    ``MAX_ENTRIES_PER_EVENT`` consecutive entries (the subject names their positions).

    The entries hold each ``AccessEntry`` field as that model would (the record was checked
    when appended, the rest the writer made), so the payload is not validated again
    (``new_event_unchecked``; ``test_writer.py`` compares it with ``AccessesRecorded``'s)."""
    events: list[CloudEvent] = []
    for start in range(0, len(entries), MAX_ENTRIES_PER_EVENT):
        chunk = entries[start : start + MAX_ENTRIES_PER_EVENT]
        first, last = chunk[0]["position"], chunk[-1]["position"]
        data = {"first_position": first, "last_position": last, "entries": chunk}
        events.append(
            new_event_unchecked(
                AccessesRecorded, data, subject=f"{first}-{last}", time=chunk[-1]["recorded_at"]
            )
        )
    return events
