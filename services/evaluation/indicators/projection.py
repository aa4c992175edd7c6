"""The indicator projection: folds a batch of events into facts, read copies and daily rows.

One function for every stream evaluation reads (workflow, exchange, catalog, identity and its
own reviews and cases), used by the live consumers and by the replay alike:

1. read copies (items, bundles, organisations) are replaced by what the event says;
2. each application, review and case the batch touches is loaded, and every event merged into
   it by rules that do not depend on order (sets grow, flags only turn on, the earliest final
   event wins, the highest revision wins);
3. each touched fact's contribution is computed again; the daily rows get the difference
   between the new and the stored contribution, and the new one is stored.

So a duplicate event changes nothing (its merge changes nothing) and a late one moves the
figures to exactly what they would have been had it come in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import CloudEvent
from services.evaluation.clock import as_utc, local_day
from services.evaluation.facts import repository as facts_repository
from services.evaluation.facts.events import (
    CatalogBundlePublished,
    CatalogItemPublished,
    ExchangeAccessesRecorded,
    ExchangeAccessRecorded,
    ExchangeRecordsImported,
    OrganisationChanged,
    WorkflowApplicationEvent,
    WorkflowSlaEvent,
    WorkflowTaskEvent,
)
from services.evaluation.facts.models import (
    CaseFact,
    OrganisationCopy,
    ReviewFact,
)
from services.evaluation.facts.repository import APPLICATIONS, BUNDLES, ITEMS
from services.evaluation.index import repository as index_repository
from services.evaluation.indicators import contributions
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators.contributions import Deltas, ItemInfo, Resolver, Rules
from services.evaluation.indicators.counters import COUNTER_GROUPS, HISTOGRAM_PREFIX
from services.evaluation.indicators.models import daily_indicators, processing_histogram
from services.evaluation.upserts import upsert

APPLICATION = "pingtai.workflow.application."
TASK = "pingtai.workflow.task."
SLA_OVERDUE = "pingtai.workflow.sla.overdue"
ACCESS = "pingtai.exchange.access.recorded"  # one entry (the exchange's earlier events)
ACCESSES = "pingtai.exchange.access.batch_recorded"  # a group commit's entries
IMPORTED = "pingtai.exchange.records.imported"
ITEM_PUBLISHED = "pingtai.catalog.item.published"
BUNDLE_PUBLISHED = "pingtai.catalog.bundle.published"
ORGANISATION = "pingtai.identity.organisation."
REVIEW = "pingtai.evaluation.review."
CASE = "pingtai.evaluation.case."
FINAL = ("completed", "rejected", "withdrawn")
MATERIALS_RANK = {"submitted": 1, "started": 2, "completed": 3, "rejected": 3}
# The projection's advisory lock on PostgreSQL ("pingeval").
LOCK_KEY = 0x70696E67_6576616C

REVIEWS = cast(Table, ReviewFact.__table__)
CASES = cast(Table, CaseFact.__table__)
ORGANISATIONS = cast(Table, OrganisationCopy.__table__)
_GROUPS = [(frozenset(group), group) for group in COUNTER_GROUPS]

# Fields every application event may carry that do not change over an application's life.
_STATIC = (
    "applicant_id", "applicant_org_id", "item_id", "item_version", "bundle_id",
    "bundle_version", "service_code", "owner_org_id", "region_code", "channel", "max_visits",
)  # fmt: skip


class Projection:
    """The batch handler of every indicator subscription (``Subscription(batch_handler=...)``)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    async def __call__(self, session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        """Apply ``events`` in the session's transaction (the consumer commits)."""
        # One projection transaction at a time: the consumers of different streams, and the
        # replicas of one consumer, would otherwise race (a batch reading an application's fact
        # while another writes it loses one of the two; an item copy committed while an
        # application of it is merged is never applied to it). The lock ends with the commit.
        await facts_repository.lock_projection(session, LOCK_KEY)
        deltas: Deltas = {}
        stale, organisations_changed = await self._copies(session, events)
        await self._applications(session, events, stale=stale, deltas=deltas)
        await self._revisions(session, events, REVIEWS, "review_id", REVIEW, deltas)
        await self._revisions(session, events, CASES, "case_id", CASE, deltas)
        await self._exchange(session, events, deltas)
        await write_deltas(session, deltas)
        await forget_stale_rankings(
            session, days=changed_days(deltas), organisations_changed=organisations_changed
        )

    # -- read copies ---------------------------------------------------------------------

    async def _copies(
        self, session: AsyncSession, events: Sequence[CloudEvent]
    ) -> tuple[list[tuple[str, str, int]], bool]:
        """Store items, bundles and organisations: the (kind, id, version) of new versions, and
        whether an organisation copy was written."""
        items: dict[tuple[str, int], dict[str, Any]] = {}
        bundles: dict[tuple[str, int], dict[str, Any]] = {}
        organisations: dict[str, dict[str, Any]] = {}
        for event in events:
            if event.type == ITEM_PUBLISHED:
                item = event.data_as(CatalogItemPublished)
                items[(item.item_id, item.version)] = _item_row(item)
            elif event.type == BUNDLE_PUBLISHED:
                bundle = event.data_as(CatalogBundlePublished)
                bundles[(bundle.bundle_id, bundle.version)] = _bundle_row(bundle)
            elif event.type.startswith(ORGANISATION):
                org = event.data_as(OrganisationChanged)
                row = organisations.setdefault(org.org_id, {"org_id": org.org_id})
                row.update(org.model_dump(exclude_none=True))
        await upsert(session, ITEMS, list(items.values()), keys=["item_id", "version"])
        await upsert(session, BUNDLES, list(bundles.values()), keys=["bundle_id", "version"])
        for row in organisations.values():
            # An update names fewer fields than a registration: keep what it does not name.
            await upsert(session, ORGANISATIONS, [row], keys=["org_id"])
        stale = [("item", i, v) for i, v in items] + [("bundle", b, v) for b, v in bundles]
        return stale, bool(organisations)

    # -- applications --------------------------------------------------------------------

    async def _applications(
        self,
        session: AsyncSession,
        events: Sequence[CloudEvent],
        *,
        stale: list[tuple[str, str, int]],
        deltas: Deltas,
    ) -> None:
        touched: dict[str, list[CloudEvent]] = {}
        for event in events:
            if event.type.startswith((APPLICATION, TASK)) or event.type == SLA_OVERDUE:
                application_id = (event.data or {}).get("application_id")
                if isinstance(application_id, str) and application_id:
                    touched.setdefault(application_id, []).append(event)
        for application_id in await facts_repository.applications_referencing(session, stale):
            touched.setdefault(application_id, [])
        if not touched:
            return
        facts = await facts_repository.rows_by_key(
            session, APPLICATIONS, "application_id", list(touched)
        )
        for application_id, applied in touched.items():
            fact = facts.setdefault(application_id, _new_application(application_id))
            for event in applied:
                merge_application(fact, event)
        resolver = await load_resolver(session, facts.values())
        for fact in facts.values():
            new = contributions.application_contribution(fact, resolver=resolver, rules=self.rules)
            contributions.add_contribution(deltas, fact["contribution"] or {}, sign=-1)
            contributions.add_contribution(deltas, new, sign=1)
            fact["contribution"] = new
        await upsert(session, APPLICATIONS, list(facts.values()), keys=["application_id"])

    # -- reviews and cases (evaluation's own events, full snapshots with a revision) ------

    async def _revisions(
        self,
        session: AsyncSession,
        events: Sequence[CloudEvent],
        table: Table,
        key: str,
        prefix: str,
        deltas: Deltas,
    ) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for event in events:
            if not event.type.startswith(prefix) or not event.data:
                continue
            state = event.data
            known = latest.get(state[key])
            if known is None or state["revision"] > known["revision"]:
                latest[state[key]] = state
        if not latest:
            return
        facts = await facts_repository.rows_by_key(session, table, key, list(latest))
        changed = []
        for subject_id, state in latest.items():
            fact = facts.get(subject_id)
            if fact is not None and fact["revision"] >= state["revision"]:
                continue
            old = fact["contribution"] if fact is not None else {}
            if prefix == REVIEW:
                new = contributions.review_contribution(state, rules=self.rules)
            else:
                new = contributions.case_contribution(state, rules=self.rules)
            contributions.add_contribution(deltas, old or {}, sign=-1)
            contributions.add_contribution(deltas, new, sign=1)
            changed.append(
                {key: subject_id, "revision": state["revision"], "state": state,
                 "contribution": new}
            )  # fmt: skip
        await upsert(session, table, changed, keys=[key])

    # -- data exchange (additive: each access is applied once, by the inbox) --------------

    async def _exchange(
        self, session: AsyncSession, events: Sequence[CloudEvent], deltas: Deltas
    ) -> None:
        # Each access counts once, by its ledger position, whether it came alone or in a batch.
        accesses: dict[str, tuple[ExchangeAccessRecorded, CloudEvent]] = {}
        imports: dict[str, CloudEvent] = {}
        for event in events:
            if event.type == ACCESS:
                access = event.data_as(ExchangeAccessRecorded)
                key = f"ledger:{access.position}" if access.position is not None else None
                accesses.setdefault(key or f"event:{event.id}", (access, event))
            elif event.type == ACCESSES:
                for index, access in enumerate(event.data_as(ExchangeAccessesRecorded).entries):
                    key = f"ledger:{access.position}" if access.position is not None else None
                    accesses.setdefault(key or f"event:{event.id}:{index}", (access, event))
            elif event.type == IMPORTED:
                import_id = event.data_as(ExchangeRecordsImported).import_id
                imports.setdefault(
                    f"import:{import_id}" if import_id else f"event:{event.id}", event
                )
        if not accesses and not imports:
            return
        fresh = await facts_repository.first_seen(session, [*accesses, *imports])
        for key, (access, event) in accesses.items():
            if key not in fresh:
                continue
            day = local_day(access.recorded_at or event.time, self.rules.timezone)
            for kind, scope_id, counter in _access_counters(access):
                deltas.setdefault((kind, scope_id, day), Counter())[counter] += 1
        for key, event in imports.items():
            if key not in fresh:
                continue
            imported = event.data_as(ExchangeRecordsImported)
            day = local_day(event.time, self.rules.timezone)
            targets = [("platform", "")]
            if imported.owner_org_id:
                targets.append(("department", imported.owner_org_id))
            for kind, scope_id in targets:
                bucket = deltas.setdefault((kind, scope_id, day), Counter())
                bucket["records_imported"] += imported.accepted


def _access_counters(access: ExchangeAccessRecorded) -> list[tuple[str, str, str]]:
    """(scope kind, scope id, counter) for one access: open data, a shared read, a refusal,
    or a read the source did not deliver (outcome ``failed``: a federated department's answer
    refused or its endpoint down), which is neither a use nor a refusal: the owner's failure."""
    found: list[tuple[str, str, str]] = []
    if access.outcome == "failed":
        found.append(("platform", "", "exchange_failed"))
        if access.owner_org_id:
            found.append(("department", access.owner_org_id, "exchange_failed"))
        return found
    if access.outcome != "granted":
        found.append(("platform", "", "exchange_refused"))
        if access.actor_org_id:
            found.append(("department", access.actor_org_id, "exchange_refused"))
    elif access.basis_kind == "open_data":
        found.append(("platform", "", "open_data_reads"))
        if access.owner_org_id:
            found.append(("department", access.owner_org_id, "open_data_reads"))
    else:
        found += [("platform", "", "exchange_provided"), ("platform", "", "exchange_used")]
        if access.owner_org_id:
            found.append(("department", access.owner_org_id, "exchange_provided"))
        if access.actor_org_id:
            found.append(("department", access.actor_org_id, "exchange_used"))
    return found


def _new_application(application_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in APPLICATIONS.columns}
    row.update(
        application_id=application_id, department_ids=[], overdue=False, supplemented=False,
        materials_rank=0, contribution=contributions.empty(),
    )  # fmt: skip
    return row


def merge_application(fact: dict[str, Any], event: CloudEvent) -> None:
    """Fold one workflow event into an application's fact, whatever the order of events."""
    if event.type.startswith(TASK):
        department = event.data_as(WorkflowTaskEvent).department_org_id
        _add_departments(fact, [department] if department else [])
        return
    if event.type == SLA_OVERDUE:
        sla = event.data_as(WorkflowSlaEvent)
        if sla.kind == "application":
            fact["overdue"] = True
        return
    data = event.data_as(WorkflowApplicationEvent)
    what = event.type.removeprefix(APPLICATION)
    for name in _STATIC:
        value = getattr(data, name)
        if value is not None and fact.get(name) is None:
            fact[name] = value
    if data.legal_time_limit_days is not None and fact["legal_limit_days"] is None:
        fact["legal_limit_days"] = data.legal_time_limit_days
    if data.promised_time_limit_days is not None and fact["promised_limit_days"] is None:
        fact["promised_limit_days"] = data.promised_time_limit_days
    if data.item_versions and not fact.get("item_versions"):
        fact["item_versions"] = [i.model_dump() for i in data.item_versions]
    _add_departments(fact, data.department_org_ids or [])
    if what == "submitted" and fact.get("submitted_at") is None:
        fact["submitted_at"] = as_utc(data.submitted_at or event.time)
    elif data.submitted_at is not None and fact.get("submitted_at") is None:
        fact["submitted_at"] = as_utc(data.submitted_at)
    if data.due_at is not None:
        due = as_utc(data.due_at)
        current = fact.get("due_at")
        # Deadlines only move later (a supplement stops the clock): keep the latest.
        fact["due_at"] = due if current is None or due > as_utc(current) else as_utc(current)
    if data.overdue:
        fact["overdue"] = True
    if what == "supplement_requested" or (data.supplement_rounds or 0) > 0:
        fact["supplemented"] = True
    final = what in FINAL
    if final:
        _finish(fact, event, what, data)
        if data.visits is not None:
            fact["visits"] = data.visits
        if data.working_days_used is not None:
            fact["working_days_used"] = data.working_days_used
    _merge_materials(fact, what, data)


def _merge_materials(fact: dict[str, Any], what: str, data: WorkflowApplicationEvent) -> None:
    """Keep the counts of the most final event that gives them: completed/rejected, then
    started (every material in), then submitted (the fetched ones; the rest asked of the
    applicant unless still being fetched)."""
    rank = MATERIALS_RANK.get(what, 0)
    if rank <= (fact.get("materials_rank") or 0) or data.materials_fetched is None:
        return
    uploaded = data.materials_uploaded
    if uploaded is None and data.materials_total is not None:
        uploaded = data.materials_total - data.materials_fetched - (data.materials_pending or 0)
    fact["materials_fetched"] = data.materials_fetched
    fact["materials_uploaded"] = max(0, uploaded or 0)
    fact["materials_rank"] = rank


def _finish(
    fact: dict[str, Any], event: CloudEvent, outcome: str, data: WorkflowApplicationEvent
) -> None:
    """The earliest final event (by time, then event id) decides outcome and finish time."""
    finished_at = as_utc(data.decided_at or event.time)
    key = f"{finished_at.isoformat()}|{event.id}"
    if fact.get("finished_key") is None or key < fact["finished_key"]:
        fact["finished_key"] = key
        fact["finished_at"] = finished_at
        fact["outcome"] = outcome


def _add_departments(fact: dict[str, Any], departments: Iterable[str]) -> None:
    fact["department_ids"] = sorted(set(fact.get("department_ids") or []) | set(departments))


def _item_row(item: CatalogItemPublished) -> dict[str, Any]:
    snapshot = item.snapshot
    return {
        "item_id": item.item_id,
        "version": item.version,
        "code": item.code,
        "name": str(snapshot.get("name") or item.code)[:200],
        "owner_org_id": item.owner_org_id,
        "region_code": snapshot.get("region_code"),
        "legal_limit_days": snapshot.get("legal_time_limit_days"),
        "promised_limit_days": snapshot.get("promised_time_limit_days"),
        "max_visits": snapshot.get("max_visits"),
    }


def _bundle_row(bundle: CatalogBundlePublished) -> dict[str, Any]:
    snapshot = bundle.snapshot
    items = [
        {"item_id": i["item_id"], "version": i["version"]}
        for i in snapshot.get("items") or []
        if isinstance(i, dict) and "item_id" in i and "version" in i
    ]
    return {
        "bundle_id": bundle.bundle_id,
        "version": bundle.version,
        "code": bundle.code,
        "name": str(snapshot.get("name") or bundle.code)[:200],
        "owner_org_id": bundle.owner_org_id,
        "items": items,
    }


async def load_resolver(session: AsyncSession, facts: Iterable[Mapping[str, Any]]) -> Resolver:
    """The item and bundle versions the facts refer to (every version of those ids)."""
    resolver = Resolver()
    facts = list(facts)
    bundle_ids = sorted({f["bundle_id"] for f in facts if f.get("bundle_id")})
    for row in await facts_repository.version_copies(session, BUNDLES, "bundle_id", bundle_ids):
        resolver.bundles[(row["bundle_id"], row["version"])] = (
            row["owner_org_id"],
            [(i["item_id"], i["version"]) for i in row["items"]],
        )
    item_ids: set[str] = set()
    for fact in facts:
        if fact.get("item_versions"):
            item_ids |= {i["item_id"] for i in fact["item_versions"]}
        elif fact.get("item_id"):
            item_ids.add(fact["item_id"])
    for _, bundle_items in resolver.bundles.values():
        item_ids |= {i for i, _ in bundle_items}
    for row in await facts_repository.version_copies(session, ITEMS, "item_id", sorted(item_ids)):
        resolver.items[(row["item_id"], row["version"])] = ItemInfo(
            item_id=row["item_id"],
            owner_org_id=row["owner_org_id"],
            region_code=row["region_code"],
            legal_limit_days=row["legal_limit_days"],
            promised_limit_days=row["promised_limit_days"],
        )
    return resolver


def changed_days(deltas: Deltas) -> list[date]:
    """The days whose daily rows (or histogram) the deltas change."""
    return sorted({day for (_, _, day), counters in deltas.items() if any(counters.values())})


async def forget_stale_rankings(
    session: AsyncSession, *, days: Sequence[date], organisations_changed: bool
) -> None:
    """Advance the generation and delete the stored rankings the change makes stale: those
    whose period holds a changed day, or every one when an organisation copy changed (names,
    kinds and regions of departments). Nothing changed: nothing to do."""
    if not days and not organisations_changed:
        return
    # First the generation (on PostgreSQL its row lock orders this against a ranking being
    # stored), then the deletion.
    await indicators_repository.advance_generation(session)
    await index_repository.forget_rankings(session, None if organisations_changed else days)


async def write_deltas(session: AsyncSession, deltas: Deltas) -> None:
    """Add the deltas to the daily rows and the histogram (rows are created as needed).

    A row's upsert names only the counter groups with a change; the others keep their values
    (a new row gets 0 for them). Rows naming the same groups share one statement.
    """
    daily: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    histogram: list[dict[str, Any]] = []
    for (kind, scope_id, day), counters in sorted(deltas.items()):
        changed = {name for name, value in counters.items() if value}
        if not changed:
            continue
        columns = tuple(
            name for members, group in _GROUPS if not changed.isdisjoint(members) for name in group
        )
        if columns:
            row: dict[str, Any] = {"scope_kind": kind, "scope_id": scope_id, "day": day}
            row.update({name: counters.get(name, 0) for name in columns})
            daily.setdefault(columns, []).append(row)
        for name in changed:
            if name.startswith(HISTOGRAM_PREFIX):
                histogram.append(
                    {"scope_kind": kind, "scope_id": scope_id, "day": day,
                     "working_days": int(name.removeprefix(HISTOGRAM_PREFIX)),
                     "applications": counters[name]}
                )  # fmt: skip
    for columns, rows in daily.items():
        await upsert(
            session, daily_indicators, rows, keys=["scope_kind", "scope_id", "day"], add=columns
        )
    await upsert(
        session,
        processing_histogram,
        histogram,
        keys=["scope_kind", "scope_id", "day", "working_days"],
        add=["applications"],
    )
