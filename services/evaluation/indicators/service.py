"""Reading indicators: values per scope and period, series, drill-down, export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.database import Database
from libs.common.errors import Forbidden, InvalidInput
from services.evaluation import audience
from services.evaluation.facts import repository as facts_repository
from services.evaluation.index.schemas import Period as PeriodView
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators.counters import COUNTERS, EXCHANGE_COUNTERS
from services.evaluation.indicators.definitions import BY_KEY, INDICATORS, compute_all
from services.evaluation.indicators.periods import Period, months
from services.evaluation.indicators.repository import Sums
from services.evaluation.indicators.schemas import (
    Breakdown,
    IndicatorDefinition,
    ScopeValues,
    Series,
    SeriesPoint,
)
from services.evaluation.regions import ancestors_and_self, parent


def definitions() -> list[IndicatorDefinition]:
    """Every indicator's definition."""
    return [
        IndicatorDefinition(
            key=i.key, name_zh=i.name_zh, name_en=i.name_en, unit=i.unit, formula=i.formula
        )
        for i in INDICATORS
    ]


def parse_scope(text: str) -> tuple[str, str]:
    """``department:<id>`` -> ("department", "<id>"); ``platform`` -> ("platform", "")."""
    kind, _, scope_id = text.partition(":")
    return kind, scope_id


def period_view(period: Period) -> PeriodView:
    return PeriodView(start=period.start.isoformat(), end=period.end.isoformat(), days=period.days)


async def check_scope(
    session: AsyncSession, principal: Principal, kind: str, scope_id: str
) -> None:
    """Platform admins and evaluators read any scope; a department its own and its items."""
    if audience.is_platform(principal) or audience.is_evaluator(principal):
        return
    department = audience.department_of(principal)
    if department is None:
        raise Forbidden("Indicators are for platform admins, evaluators and departments.")
    if kind == "department" and scope_id == department:
        return
    if kind == "item" and scope_id in await facts_repository.items_of_department(
        session, department
    ):
        return
    raise Forbidden("A department reads its own figures (and its items') only.")


async def _region_departments(session: AsyncSession) -> dict[str, list[str]]:
    """Region code -> the departments in it (and in every region below it)."""
    found: dict[str, list[str]] = {}
    for org in await facts_repository.organisations(session):
        if org.kind not in (None, "department") or not org.region_code:
            continue
        for region in ancestors_and_self(org.region_code):
            found.setdefault(region, []).append(org.org_id)
    return found


def _add_exchange(target: Sums, source: Sums) -> None:
    for name in EXCHANGE_COUNTERS:
        target[name] = target.get(name, 0) + source.get(name, 0)


async def sums_for(
    session: AsyncSession, *, kind: str, ids: Sequence[str] | None, period: Period
) -> dict[str, Sums]:
    """Summed counters per scope; a region's exchange counters are its departments'."""
    found = await indicators_repository.sums_by_scope(
        session, kind=kind, ids=ids, start=period.start, end=period.end
    )
    if kind != "region":
        return found
    by_region = await _region_departments(session)
    regions = list(ids) if ids is not None else sorted(set(found) | set(by_region))
    wanted = sorted({d for r in regions for d in by_region.get(r, [])})
    departments = await indicators_repository.sums_by_scope(
        session, kind="department", ids=wanted, start=period.start, end=period.end
    )
    for region in regions:
        members = [departments[d] for d in by_region.get(region, []) if d in departments]
        if region not in found and not members:
            continue
        sums = found.setdefault(region, dict.fromkeys(COUNTERS, 0))
        for member in members:
            _add_exchange(sums, member)
    return found


async def names_for(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, str]:
    """Labels: organisation names for departments, item names for items."""
    if kind == "department":
        return {o.org_id: o.name for o in await facts_repository.organisations(session) if o.name}
    if kind == "item":
        return await facts_repository.item_names(session, ids)
    return {}


async def values(
    *, session: AsyncSession, principal: Principal, scope: str, period: Period
) -> ScopeValues:
    """Every indicator of one scope for one period."""
    kind, scope_id = parse_scope(scope)
    await check_scope(session, principal, kind, scope_id)
    found = await _values_of(session, kind=kind, ids=[scope_id], period=period)
    return found[0]


async def _values_of(
    session: AsyncSession, *, kind: str, ids: Sequence[str] | None, period: Period
) -> list[ScopeValues]:
    sums = await sums_for(session, kind=kind, ids=ids, period=period)
    histograms = await indicators_repository.histograms_by_scope(
        session, kind=kind, ids=ids, start=period.start, end=period.end
    )
    wanted = list(ids) if ids is not None else sorted(sums)
    names = await names_for(session, kind, wanted)
    empty = dict.fromkeys(COUNTERS, 0)
    return [
        ScopeValues(
            scope_kind=kind,
            scope_id=scope_id,
            name=names.get(scope_id),
            period=period_view(period),
            values=compute_all(
                sums.get(scope_id, empty), period.days, histograms.get(scope_id, {})
            ),
            counters=sums.get(scope_id, empty),
        )
        for scope_id in wanted
    ]


async def series(
    *,
    session: AsyncSession,
    principal: Principal,
    scope: str,
    period: Period,
    indicators: Sequence[str],
    granularity: str,
) -> Series:
    """Indicators of one scope, per day or per month of the period."""
    kind, scope_id = parse_scope(scope)
    await check_scope(session, principal, kind, scope_id)
    unknown = [i for i in indicators if i not in BY_KEY]
    if unknown:
        raise InvalidInput.for_field(
            "indicator", f"unknown indicator(s): {', '.join(unknown)}", location="query"
        )
    wanted = list(indicators) or [i.key for i in INDICATORS]
    daily = await indicators_repository.sums_by_day(
        session, kind=kind, ids=[scope_id], start=period.start, end=period.end
    )
    if kind == "region":
        members = (await _region_departments(session)).get(scope_id, [])
        exchange = await indicators_repository.sums_by_day(
            session, kind="department", ids=members, start=period.start, end=period.end
        )
        for day, department_sums in exchange.items():
            _add_exchange(daily.setdefault(day, dict.fromkeys(COUNTERS, 0)), department_sums)
    histograms = await indicators_repository.histograms_by_day(
        session, kind=kind, scope_id=scope_id, start=period.start, end=period.end
    )
    steps = (
        months(period)
        if granularity == "month"
        else [Period(period.start + timedelta(days=n), period.start + timedelta(days=n))
              for n in range(period.days)]
    )  # fmt: skip
    points = []
    for step in steps:
        sums: Sums = dict.fromkeys(COUNTERS, 0)
        histogram: dict[int, int] = {}
        day = step.start
        while day <= step.end:
            for name, value in daily.get(day, {}).items():
                sums[name] += value
            for wd, count in histograms.get(day, {}).items():
                histogram[wd] = histogram.get(wd, 0) + count
            day += timedelta(days=1)
        computed = compute_all(sums, step.days, histogram)
        points.append(
            SeriesPoint(
                start=step.start.isoformat(), end=step.end.isoformat(),
                values={key: computed[key] for key in wanted},
            )
        )  # fmt: skip
    return Series(
        scope_kind=kind,
        scope_id=scope_id,
        granularity=granularity,
        indicators=wanted,
        points=points,
    )


async def breakdown(
    *, session: AsyncSession, principal: Principal, scope: str, by: str, period: Period
) -> Breakdown:
    """A scope's figures and its children's: regions below, departments in it, its items."""
    kind, scope_id = parse_scope(scope)
    await check_scope(session, principal, kind, scope_id)
    own = (await _values_of(session, kind=kind, ids=[scope_id], period=period))[0]
    children_ids = await _children(session, kind=kind, scope_id=scope_id, by=by, period=period)
    if (
        audience.department_of(principal)
        and not (audience.is_platform(principal) or audience.is_evaluator(principal))
        and by != "item"
    ):
        raise Forbidden("A department drills down into its own items only.")
    children = (
        await _values_of(session, kind=by, ids=children_ids, period=period) if children_ids else []
    )
    return Breakdown(scope=own, by=by, children=children)


async def _children(
    session: AsyncSession, *, kind: str, scope_id: str, by: str, period: Period
) -> list[str]:
    if by == "region":
        if kind not in ("platform", "region"):
            raise InvalidInput.for_field(
                "by", "only the platform and regions have regions", location="query"
            )
        present = await indicators_repository.sums_by_scope(
            session, kind="region", ids=None, start=period.start, end=period.end
        )
        codes = set(present) | set(await _region_departments(session))
        if kind == "platform":
            return sorted(c for c in codes if parent(c) is None)
        return sorted(c for c in codes if parent(c) == scope_id)
    if by == "department":
        if kind == "platform":
            return sorted(
                (await indicators_repository.sums_by_scope(
                    session, kind="department", ids=None, start=period.start, end=period.end
                )).keys()
            )  # fmt: skip
        if kind == "region":
            return sorted((await _region_departments(session)).get(scope_id, []))
        raise InvalidInput.for_field(
            "by", "departments are under the platform or a region", location="query"
        )
    if by == "item":
        if kind == "department":
            return await facts_repository.items_of_department(session, scope_id)
        if kind == "platform":
            return sorted(
                (await indicators_repository.sums_by_scope(
                    session, kind="item", ids=None, start=period.start, end=period.end
                )).keys()
            )  # fmt: skip
        raise InvalidInput.for_field(
            "by", "items are under the platform or a department", location="query"
        )
    raise InvalidInput.for_field("by", "region, department or item", location="query")


async def check_export(
    *, session: AsyncSession, principal: Principal, scope_kind: str, scope_id: str | None
) -> tuple[list[str] | None, dict[str, str]]:
    """Which scopes the caller may export, and their names."""
    if scope_id is not None:
        await check_scope(session, principal, scope_kind, scope_id)
    elif not (audience.is_platform(principal) or audience.is_evaluator(principal)):
        own = audience.department_of(principal)
        if own is None or scope_kind != "department":
            raise Forbidden("A department exports its own figures only.")
        scope_id = own
    ids = [scope_id] if scope_id is not None else None
    names = await names_for(session, scope_kind, ids or []) if ids else {}
    if ids is None and scope_kind == "department":
        names = await names_for(session, scope_kind, [])
    return ids, names


async def export_csv(
    *,
    database: Database,
    scope_kind: str,
    ids: list[str] | None,
    names: dict[str, str],
    period: Period,
) -> AsyncIterator[str]:
    """CSV text, one line per scope and day: the scope, the day, every indicator and counter.

    Reads in its own session, as a stream, while the response is being sent.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = [i.key for i in INDICATORS if i.percentile is None]
    writer.writerow(["scope_kind", "scope_id", "name", "day", *keys, *COUNTERS])
    async with database.sessionmaker() as session:
        async for found_id, day, sums in indicators_repository.stream_rows(
            session, kind=scope_kind, ids=ids, start=period.start, end=period.end
        ):
            computed = compute_all(sums, 1)
            writer.writerow(
                [scope_kind, found_id, names.get(found_id, ""), day.isoformat(),
                 *("" if computed[k] is None else f"{computed[k]:.6g}" for k in keys),
                 *(sums[name] for name in COUNTERS)]
            )  # fmt: skip
            if buffer.tell() > 32_768:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
