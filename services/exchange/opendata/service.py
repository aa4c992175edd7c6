"""Open data (公共数据开放): datasets whose open type is ``open``, for anyone, public fields only.

A dataset that is not open is answered exactly as one that does not exist: no records, no
count, not even its name. Every read is written to the access ledger (basis ``open_data``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.context import current_request_id
from libs.common.errors import InvalidInput
from services.exchange.datasets import service as datasets_service
from services.exchange.datasets.exceptions import DatasetNotFound, DatasetNotHosted
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.ledger import AccessRecord, Ledger
from services.exchange.records import repository as records_repository

ANONYMOUS = "anonymous"
PURPOSE = "open data"


async def open_dataset(session: AsyncSession, dataset_id: str) -> ExchangeDataset:
    """An open, published dataset; anything else is the same 404 as an unknown id."""
    dataset = await datasets_service.get_dataset(session, dataset_id)
    if dataset is None or not dataset.is_open:
        raise DatasetNotFound(f"No open dataset {dataset_id}.")
    return dataset


def public_fields(dataset: ExchangeDataset) -> list[str]:
    """The fields open data shows, in the catalogue's order."""
    return [f.name for f in dataset.fields if f.sensitivity == "public"]


def chosen_fields(dataset: ExchangeDataset, wanted: str | None) -> list[str]:
    """The public fields ``wanted`` names (comma-separated), or all public ones."""
    available = public_fields(dataset)
    if wanted is None:
        return available
    names = list(dict.fromkeys(n.strip() for n in wanted.split(",") if n.strip()))
    refused = [n for n in names if n not in available]
    if refused or not names:
        raise InvalidInput.for_field(
            "fields",
            f"choose among the public fields {available}; not {refused or 'nothing'}",
            location="query",
        )
    return names


def ensure_hosted(dataset: ExchangeDataset) -> None:
    """Open data serves hosted records; a federated dataset's department serves its own."""
    if dataset.mode != "hosted":
        raise DatasetNotHosted(
            f"Dataset {dataset.id} is federated: its records are served by its department."
        )


async def records_page(
    *, session: AsyncSession, dataset: ExchangeDataset, fields: Sequence[str],
    after: str | None, limit: int,
) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """``(subject_key, {field: value})`` of a hosted open dataset, in key order."""
    ensure_hosted(dataset)
    rows = await records_repository.page(session, dataset_id=dataset.id, after=after, limit=limit)
    page: list[tuple[str, dict[str, Any]]] = []
    for key, data in rows:
        record = json.loads(data)
        page.append((key, {name: record.get(name) for name in fields}))
    return page


async def record_read(
    ledger: Ledger,
    *,
    session: AsyncSession,
    principal: Principal | None,
    dataset: ExchangeDataset,
    fields: Sequence[str],
) -> None:
    """One ledger entry for one open-data request (no subject: the read is of the dataset).

    The request's read-only unit of work ends first: a request waiting for its entry's group
    commit must not hold a pooled connection, or waiting requests could hold every one and
    leave the ledger's writer none to commit with. Nothing was written, so nothing is lost;
    the objects read stay usable.
    """
    await session.close()
    await ledger.append(
        AccessRecord(
            actor=principal.sub if principal else ANONYMOUS,
            client_id=principal.client_id if principal else ANONYMOUS,
            actor_org_id=principal.org if principal else None,
            dataset_id=dataset.id,
            owner_org_id=dataset.owner_org_id,
            subject_ref=None,
            fields=tuple(fields),
            purpose=PURPOSE,
            basis_kind="open_data",
            basis_ref=None,
            outcome="granted",
            request_id=current_request_id(),
        )
    )
