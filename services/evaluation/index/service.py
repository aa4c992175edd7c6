"""The composite index: versions of the indicator system, scores and rankings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Forbidden, InvalidInput, NotFound
from services.evaluation import audience
from services.evaluation.clock import utcnow
from services.evaluation.facts import repository as facts_repository
from services.evaluation.index import repository as index_repository
from services.evaluation.index import scoring
from services.evaluation.index.defaults import DEFAULT_SYSTEM
from services.evaluation.index.models import IndexSystem as IndexSystemRow
from services.evaluation.index.schemas import (
    IndexSystem,
    IndexSystemCreate,
    IndexSystemDefinition,
    Ranking,
)
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators import service as indicators_service
from services.evaluation.indicators.counters import COUNTERS
from services.evaluation.indicators.definitions import compute_all
from services.evaluation.indicators.periods import Period
from services.evaluation.regions import ancestors_and_self

REGION_LEVELS = {"province": 1, "city": 2, "county": 3}


class IndexSystemNotFound(NotFound):
    code = "index-system-not-found"


def _view(row: IndexSystemRow | None) -> IndexSystem:
    if row is None:
        return IndexSystem(
            **DEFAULT_SYSTEM, version=0, note="built-in default", created_at=None, created_by=None
        )
    return IndexSystem(
        **row.definition, version=row.version, note=row.note, created_at=row.created_at,
        created_by=row.created_by,
    )  # fmt: skip


async def system(*, session: AsyncSession, version: int | None) -> IndexSystem:
    """Version ``version`` of the indicator system, or the current one."""
    if version is None:
        return _view(await index_repository.latest(session))
    if version == 0:
        return _view(None)
    row = await index_repository.get(session, version)
    if row is None:
        raise IndexSystemNotFound(f"No indicator system version {version}.")
    return _view(row)


async def versions(*, session: AsyncSession) -> list[IndexSystem]:
    """The built-in default and every stored version, oldest first."""
    return [_view(None), *(_view(r) for r in await index_repository.all_versions(session))]


async def create(
    *, session: AsyncSession, principal: Principal, body: IndexSystemCreate
) -> IndexSystem:
    """Store the next version of the indicator system (platform admins only)."""
    if not audience.is_platform(principal):
        raise Forbidden("Only platform admins change the indicator system.")
    definition = IndexSystemDefinition.model_validate(body.model_dump(exclude={"note"}))
    row = IndexSystemRow(
        version=await index_repository.next_version(session),
        definition=definition.model_dump(mode="json"),
        note=body.note,
        created_at=utcnow(),
        created_by=principal.sub,
    )
    return _view(await index_repository.insert(session, row))


def _region_level(code: str) -> int:
    return len(ancestors_and_self(code))


async def ranking(
    *,
    session: AsyncSession,
    engine: AsyncEngine,
    principal: Principal,
    scope_kind: str,
    period: Period,
    version: int | None,
    region_level: str,
    keep: int,
) -> str:
    """Every department (or region of a level) ranked by its composite index for ``period``,
    as the API's JSON: the stored ranking when there is one, else computed and stored.

    A stored ranking is deleted when its period's daily rows or the organisation copies change
    (``projection.forget_stale_rankings``), and one computed while they changed is not stored
    (``store_ranking``), so what is read equals what would be computed now.
    """
    audience.require_reader(principal)
    if scope_kind == "region" and region_level not in REGION_LEVELS:
        raise InvalidInput.for_field("level", "province, city or county", location="query")
    level = region_level if scope_kind == "region" else ""
    stored = await index_repository.stored_ranking(
        engine, scope_kind=scope_kind, level=level, period_start=period.start,
        period_end=period.end, system_version=version,
    )  # fmt: skip
    if stored is not None:
        return stored
    resolved = await index_repository.latest_version(session) if version is None else version
    key = index_repository.RankingKey(scope_kind, level, period.start, period.end, resolved)
    # Read before the figures: if a batch commits after this, the generation has moved on.
    generation = await indicators_repository.generation(session)
    chosen = await system(session=session, version=resolved)
    computed = await compute_ranking(
        session=session, scope_kind=scope_kind, period=period, chosen=chosen,
        region_level=region_level,
    )  # fmt: skip
    body = computed.model_dump_json()
    if generation is not None:
        await index_repository.store_ranking(
            session, key, body=body, generation=generation, keep=keep
        )
    return body


async def compute_ranking(
    *,
    session: AsyncSession,
    scope_kind: str,
    period: Period,
    chosen: IndexSystem,
    region_level: str,
) -> Ranking:
    """The ranking computed from the daily rows now (what a stored ranking must equal)."""
    sums = await indicators_service.sums_for(session, kind=scope_kind, ids=None, period=period)
    if scope_kind == "region":
        level = REGION_LEVELS[region_level]
        sums = {code: s for code, s in sums.items() if _region_level(code) == level}
    elif scope_kind == "department":
        organisations = {o.org_id: o for o in await facts_repository.organisations(session)}
        # Enterprises read data too; only departments are ranked.
        sums = {
            d: s for d, s in sums.items()
            if d not in organisations or organisations[d].kind in (None, "department")
        }  # fmt: skip
    needs_histogram = any(
        w.indicator.startswith("p90_") for d in chosen.dimensions for w in d.indicators
    )
    histograms = (
        await indicators_repository.histograms_by_scope(
            session, kind=scope_kind, ids=None, start=period.start, end=period.end
        )
        if needs_histogram
        else {}
    )
    names = await indicators_service.names_for(session, scope_kind, sorted(sums))
    cards: list[dict[str, Any]] = []
    for scope_id in sorted(sums):
        values = compute_all(
            sums.get(scope_id, dict.fromkeys(COUNTERS, 0)), period.days, histograms.get(scope_id)
        )
        composite, dimensions, parts = scoring.score(chosen, values)
        cards.append(
            {"rank": None, "scope_kind": scope_kind, "scope_id": scope_id,
             "name": names.get(scope_id), "composite": composite, "dimensions": dimensions,
             "contributions": parts}
        )  # fmt: skip
    # Best first; equal scores share a rank (1, 2, 2, 4); ties keep the scope id order.
    cards.sort(key=lambda c: (c["composite"] is None, -(c["composite"] or 0.0), c["scope_id"]))
    previous: float | None = None
    for position, card in enumerate(cards, start=1):
        if card["composite"] is None:
            break
        card["rank"] = position if card["composite"] != previous else cards[position - 2]["rank"]
        previous = card["composite"]
    # One validation of the whole tree (in pydantic-core) instead of one per object.
    return Ranking.model_validate(
        {"system_version": chosen.version,
         "period": indicators_service.period_view(period).model_dump(), "items": cards}
    )  # fmt: skip
