"""Where a dataset's records are read from: the exchange's own tables for a hosted dataset,
the department's endpoint for a federated one. The access part reads through ``RecordSource``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.common.database import Database
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.records import repository as records_repository


class FederatedQuery(Protocol):
    """Forwards a query to a federated dataset's endpoint (``services.exchange.federation``)."""

    async def query(
        self,
        dataset: ExchangeDataset,
        subject_keys: Sequence[str],
        *,
        fields: Sequence[str],
        request_id: str | None,
        client_id: str,
    ) -> dict[str, dict[str, Any]]: ...


class RecordSource:
    """Reads the current records of subjects, hosted or federated alike."""

    def __init__(self, *, federation: FederatedQuery, database: Database | None = None) -> None:
        self.federation = federation
        self.database = database

    async def fetch(
        self,
        dataset: ExchangeDataset,
        subject_keys: Sequence[str],
        *,
        fields: Sequence[str],
        request_id: str | None,
        client_id: str,
        reader: AsyncSession | AsyncConnection | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``{subject_key: {field: value}}`` for the subjects found, with only ``fields``.

        ``subject_keys`` must be normalised (``normalise_subject_key``); subjects without a
        record are left out. Hosted records are read through ``reader``, or else a connection
        of the source's database held only for the read. A federated dataset's endpoint
        answering badly raises a 502/504 problem (``services.exchange.federation.exceptions``).
        """
        keys = list(dict.fromkeys(subject_keys))
        if not keys:
            return {}
        if dataset.mode == "federated":
            return await self.federation.query(
                dataset, keys, fields=fields, request_id=request_id, client_id=client_id
            )
        if reader is not None:
            stored = await records_repository.current_data(
                reader, dataset_id=dataset.id, subject_keys=keys
            )
        elif self.database is not None and len(keys) == 1:
            one = await records_repository.current_record(
                self.database.engine, dataset_id=dataset.id, subject_key=keys[0]
            )
            stored = {keys[0]: one} if one is not None else {}
        elif self.database is not None:
            # Closed by hand, not by ``async with``: AsyncConnection.__aexit__ closes in a task
            # of its own, so the connection stays checked out for a turn of the event loop
            # while other requests check out more (under load the pool opened new ones).
            connection = await self.database.engine.connect()
            try:
                stored = await records_repository.current_data(
                    connection, dataset_id=dataset.id, subject_keys=keys
                )
            finally:
                await connection.close()
        else:
            raise RuntimeError("a RecordSource without a database reads hosted records via reader")
        wanted = list(fields)
        found: dict[str, dict[str, Any]] = {}
        for key, (_version, data) in stored.items():
            record = json.loads(data)
            found[key] = {name: record.get(name) for name in wanted}
        return found


async def _record_source(request: Request) -> RecordSource:
    # async: FastAPI runs a plain-function dependency in a worker thread on every request.
    source: RecordSource = request.app.state.record_source
    return source


RecordSourceDep = Annotated[RecordSource, Depends(_record_source)]
