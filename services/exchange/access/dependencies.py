"""What the access endpoints take from the app, each as one cheap dependency.

A record query needs the database, the ledger, the record source, the grant cache and the
subject references: one ``QueryServices`` (built once per app) that the endpoint takes from
its ``Request``, instead of a dependency each — FastAPI resolves every dependency (and its
parameters) on every request, about 25 µs apiece here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from libs.common.database import Database
from libs.common.subjects import SubjectRefs, subject_refs_for
from services.exchange.access.cache import GrantCache
from services.exchange.ledger import Ledger
from services.exchange.records import RecordSource


@dataclass(frozen=True, slots=True)
class QueryServices:
    """The app's services a record query uses."""

    database: Database
    ledger: Ledger
    source: RecordSource
    cache: GrantCache
    subject_refs: SubjectRefs


def query_services(app: FastAPI) -> QueryServices:
    """The app's ``QueryServices``, made on first use (after the lifespans started)."""
    state = app.state
    services: QueryServices | None = getattr(state, "query_services", None)
    if services is None or services.ledger is not state.ledger:  # a lifespan runs again
        services = state.query_services = QueryServices(
            database=state.database,
            ledger=state.ledger,
            source=state.record_source,
            cache=state.grant_cache,
            subject_refs=subject_refs_for(state.settings.secret_key),
        )
    return services


async def _grant_cache(request: Request) -> GrantCache:
    cache: GrantCache = request.app.state.grant_cache
    return cache


GrantCacheDep = Annotated[GrantCache, Depends(_grant_cache)]
