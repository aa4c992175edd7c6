"""The rules of hosted records: who may push them, how an upload is applied, their history.

An upload is applied in batches, each in a transaction of its own: a large file never holds the
database's write lock for long, and the batches that committed stay if the upload breaks off
(the department sends the file again; unchanged rows make no new version). This is why this
module, unlike other services, commits: it is the upload's unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.auth import Principal
from libs.common.errors import Forbidden
from libs.common.events import new_event, outbox
from services.exchange.datasets import repository as datasets_repository
from services.exchange.datasets import service as datasets_service
from services.exchange.datasets.exceptions import (
    DatasetNotFound,
    DatasetNotHosted,
    DatasetRetired,
)
from services.exchange.datasets.models import ExchangeDataset, utcnow
from services.exchange.records import repository as records_repository
from services.exchange.records.events import RecordsImported
from services.exchange.records.exceptions import RecordNotFound
from services.exchange.records.models import HostedRecordVersion, RecordImport
from services.exchange.records.parsing import (
    CsvReader,
    GoodRow,
    NdjsonReader,
    Reader,
    RowChecker,
    RowError,
    UploadRefused,
)
from services.exchange.records.schemas import (
    ImportSummary,
    RecordVersion,
    RowProblem,
    UploadFormat,
)

_COUNTERS = frozenset({"received", "inserted", "updated", "unchanged", "rejected"})


@dataclass
class _Upload:
    """One upload in progress: what it goes to and what became of its rows so far."""

    dataset: ExchangeDataset
    import_id: str
    format: UploadFormat
    by_org_id: str | None
    max_reported_errors: int
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_not_shown: int = 0

    def refuse(self, errors: list[RowError]) -> None:
        """Count a bad row and keep its reasons while there is room."""
        self.rejected += 1
        room = max(0, self.max_reported_errors - len(self.errors))
        self.errors.extend(errors[:room])
        self.errors_not_shown += max(0, len(errors) - room)

    def summary(self) -> ImportSummary:
        """The answer to the uploader."""
        return ImportSummary(
            **self.counts(),
            errors=[RowProblem(line=e.line, field=e.field, reason=e.reason) for e in self.errors],
            errors_not_shown=self.errors_not_shown,
        )

    def event(self) -> RecordsImported:
        """The event the finished upload publishes."""
        return RecordsImported(
            **self.counts(),
            accepted=self.inserted + self.updated + self.unchanged,
            owner_org_id=self.dataset.owner_org_id,
            by_org_id=self.by_org_id,
        )

    def counts(self) -> dict[str, Any]:
        """Which upload this is and what became of its rows."""
        return {
            "import_id": self.import_id,
            "dataset_id": self.dataset.id,
            "dataset_version": self.dataset.version,
            "format": self.format,
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


async def managed_dataset(
    *, session: AsyncSession, principal: Principal, dataset_id: str
) -> ExchangeDataset:
    """A dataset whose records the caller may push or see the history of."""
    dataset = await datasets_service.get_dataset(session, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"No dataset {dataset_id}.")
    if not datasets_service.may_manage_records(principal, dataset):
        raise Forbidden("Only the owner department and platform admins manage its records.")
    return dataset


async def import_records(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    dataset_id: str,
    upload_format: UploadFormat,
    chunks: AsyncIterator[bytes],
    batch_rows: int,
    max_reported_errors: int,
) -> ImportSummary:
    """Check each row of a streamed upload and upsert the good ones by subject key."""
    import_id = uuid.uuid4().hex
    async with sessionmaker() as session:
        dataset = await managed_dataset(session=session, principal=principal, dataset_id=dataset_id)
        if dataset.mode != "hosted":
            raise DatasetNotHosted(
                f"Dataset {dataset_id} is federated: its records stay in the department's system."
            )
        if dataset.status != "published":
            raise DatasetRetired(f"Dataset {dataset_id} is retired; it takes no more records.")
        records_repository.add_import(
            session,
            RecordImport(
                id=import_id,
                dataset_id=dataset.id,
                dataset_version=dataset.version,
                format=upload_format,
                status="running",
                by_sub=principal.sub,
                by_client_id=principal.client_id,
                by_org_id=principal.org,
            ),
        )
        await session.commit()
    upload = _Upload(
        dataset=dataset,
        import_id=import_id,
        format=upload_format,
        by_org_id=principal.org,
        max_reported_errors=max_reported_errors,
    )
    checker = RowChecker(dataset, text=upload_format == "csv")
    reader: Reader = CsvReader(known=checker.names) if upload_format == "csv" else NdjsonReader()
    batch: dict[str, GoodRow] = {}
    # One batch is written while the next is read and checked. SQLite's statements run inline
    # on the event loop (libs/common/sqlite_driver.py), so the upload's bytes are parsed and
    # checked in a worker thread meanwhile (SQLite releases the GIL while it works); on
    # PostgreSQL the server writes. Batches still commit in order.
    writing: asyncio.Task[None] | None = None
    read: list[bytes] = []
    read_bytes = 0

    async def place(chunks: list[bytes], *, last: bool = False) -> None:
        nonlocal writing, batch
        received, results = await asyncio.to_thread(_read_and_check, reader, checker, chunks, last)
        upload.received += received
        for checked in results:
            if isinstance(checked, list):
                upload.refuse(checked)
                continue
            if checked.subject_key in batch or len(batch) >= batch_rows:
                # A subject twice in one batch is written in order: its first row goes first.
                if writing is not None:
                    await writing
                writing = asyncio.create_task(
                    _write_batch(sessionmaker, upload, list(batch.values()))
                )
                batch = {}
            batch[checked.subject_key] = checked

    try:
        async for chunk in chunks:
            read.append(chunk)
            read_bytes += len(chunk)
            if read_bytes >= READ_BYTES:
                await place(read)
                read, read_bytes = [], 0
        await place(read, last=True)
    except BaseException as error:
        if writing is not None:
            await _settle(writing)
        if isinstance(error, UploadRefused):
            await _refused(sessionmaker, import_id)
        raise
    if writing is not None:
        await writing
    await _write_batch(sessionmaker, upload, list(batch.values()), last=True)
    return upload.summary()


# How much of an upload is parsed and checked in one trip to a worker thread.
READ_BYTES = 64 * 1024


def _read_and_check(
    reader: Reader, checker: RowChecker, chunks: Sequence[bytes], last: bool
) -> tuple[int, list[GoodRow | list[RowError]]]:
    """The rows these chunks complete (with the last ones, at the end), each checked."""
    rows = [row for chunk in chunks for row in reader.feed(chunk)]
    if last:
        rows += reader.end()
    return len(rows), [checker.check(row) for row in rows]


async def _settle(task: asyncio.Task[None]) -> None:
    """Let a batch in flight finish (or fail) before the upload gives up."""
    with contextlib.suppress(Exception):
        await task


async def _refused(sessionmaker: async_sessionmaker[AsyncSession], import_id: str) -> None:
    async with sessionmaker() as session:
        await records_repository.update_import(
            session, import_id=import_id, values={"status": "refused", "finished_at": utcnow()}
        )
        await session.commit()


async def _write_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    upload: _Upload,
    rows: Sequence[GoodRow],
    *,
    last: bool = False,
) -> None:
    """Upsert one batch in its own transaction; the last one also closes the import."""
    now = utcnow()
    dataset = upload.dataset
    async with sessionmaker() as session:
        # The first statement writes, so SQLite's write lock is held from here to the commit;
        # on PostgreSQL the dataset's row lock keeps two uploads to one dataset in turn.
        await _record_progress(session, upload, now=now, last=last)
        await datasets_repository.get_for_update(session, dataset_id=dataset.id)
        await records_repository.plan_for_these_keys(session)
        connection = await session.connection()
        current = await connection.run_sync(
            records_repository.current_for_update,
            dataset_id=dataset.id,
            subject_keys=[r.subject_key for r in rows],
        )
        inserts: list[tuple[str, str]] = []
        updates: list[tuple[str, int, str]] = []
        for row in rows:
            held = current.get(row.subject_key)
            if held is None:
                inserts.append((row.subject_key, row.data))
            elif held[1] != row.data:
                updates.append((row.subject_key, held[0] + 1, row.data))
        upload.inserted += len(inserts)
        upload.updated += len(updates)
        upload.unchanged += len(rows) - len(inserts) - len(updates)
        await connection.run_sync(
            records_repository.write_batch,
            dataset_id=dataset.id,
            dataset_version=dataset.version,
            import_id=upload.import_id,
            now=now,
            inserts=inserts,
            updates=updates,
        )
        await _record_progress(session, upload, now=now, last=last)
        if last:
            await outbox.add(session, new_event(upload.event(), subject=dataset.id))
        await session.commit()


async def _record_progress(session: AsyncSession, upload: _Upload, *, now: Any, last: bool) -> None:
    await records_repository.update_import(
        session,
        import_id=upload.import_id,
        values={
            **{k: v for k, v in upload.counts().items() if k in _COUNTERS},
            **({"status": "completed", "finished_at": now} if last else {}),
        },
    )


async def history(
    *,
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    raw_subject_key: str,
    before: int | None,
    limit: int,
) -> tuple[ExchangeDataset, str, Sequence[HostedRecordVersion]]:
    """A subject's record versions, newest first, for the owner department: the dataset, the
    normalised subject key and the versions (the caller records the read in the ledger)."""
    dataset = await managed_dataset(session=session, principal=principal, dataset_id=dataset_id)
    if dataset.mode != "hosted":
        raise DatasetNotHosted(f"Dataset {dataset_id} is federated: the exchange keeps no history.")
    subject_key = datasets_service.normalise_subject_key(dataset, raw_subject_key)
    versions = await records_repository.history(
        session, dataset_id=dataset.id, subject_key=subject_key, after=before, limit=limit
    )
    if not versions and before is None:
        raise RecordNotFound(f"Dataset {dataset_id} holds no record for this subject.")
    return dataset, subject_key, versions


def version_view(version: HostedRecordVersion) -> RecordVersion:
    """The API's view of one version."""
    return RecordVersion(
        version=version.version,
        data=json.loads(version.data),
        dataset_version=version.dataset_version,
        import_id=version.import_id,
        created_at=version.created_at,
    )
