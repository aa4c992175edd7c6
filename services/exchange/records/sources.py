"""Where a dataset's records are read from: the exchange's own tables for a hosted dataset,
the department's endpoint for a federated one. The access part reads through ``RecordSource``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

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

    def __init__(self, *, federation: FederatedQuery) -> None:
        self.federation = federation

    async def fetch(
        self,
        session: AsyncSession,
        dataset: ExchangeDataset,
        subject_keys: Sequence[str],
        *,
        fields: Sequence[str],
        request_id: str | None,
        client_id: str,
    ) -> dict[str, dict[str, Any]]:
        """``{subject_key: {field: value}}`` for the subjects found, with only ``fields``.

        ``subject_keys`` must be normalised (``normalise_subject_key``); subjects without a
        record are left out. A federated dataset's endpoint answering badly raises a 502/504
        problem (``services.exchange.federation.exceptions``).
        """
        keys = list(dict.fromkeys(subject_keys))
        if not keys:
            return {}
        if dataset.mode == "federated":
            return await self.federation.query(
                dataset, keys, fields=fields, request_id=request_id, client_id=client_id
            )
        stored = await records_repository.current_data(
            session, dataset_id=dataset.id, subject_keys=keys
        )
        wanted = list(fields)
        found: dict[str, dict[str, Any]] = {}
        for key, (_version, data) in stored.items():
            record = json.loads(data)
            found[key] = {name: record.get(name) for name in wanted}
        return found


def _record_source(request: Request) -> RecordSource:
    source: RecordSource = request.app.state.record_source
    return source


RecordSourceDep = Annotated[RecordSource, Depends(_record_source)]
