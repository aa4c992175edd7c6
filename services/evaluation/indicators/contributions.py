"""What one application, review, case or data access adds to the daily indicator rows.

Pure functions of a fact and the read copies it refers to; docs/evaluation.md gives the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.evaluation.clock import as_utc, local_day, working_days_between
from services.evaluation.indicators.counters import HISTOGRAM_PREFIX
from services.evaluation.regions import ancestors_and_self

PLATFORM = "platform|"
# (scope kind, scope id, day) -> counters (and "wd:<n>" histogram entries)
Deltas = dict[tuple[str, str, date], Counter[str]]


@dataclass(frozen=True)
class ItemInfo:
    """What indicators need of a published item version."""

    item_id: str
    owner_org_id: str
    region_code: str | None
    legal_limit_days: int | None
    promised_limit_days: int | None


@dataclass
class Resolver:
    """The read copies a batch needs: item versions and bundle versions by (id, version)."""

    items: dict[tuple[str, int], ItemInfo] = field(default_factory=dict)
    # (bundle id, version) -> (owner org id, [(item id, version)])
    bundles: dict[tuple[str, int], tuple[str | None, list[tuple[str, int]]]] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Rules:
    """The settings contributions depend on."""

    timezone: str
    online_channels: frozenset[str]

    def is_online(self, channel: str | None) -> bool:
        """Whether an application came in online (no channel given: the platform's own API)."""
        return channel is None or channel in self.online_channels


def scope(kind: str, scope_id: str) -> str:
    """A scope's key in a contribution."""
    return f"{kind}|{scope_id}"


def region_scopes(region_code: str | None) -> list[str]:
    """The region and every region above it."""
    return [scope("region", r) for r in ancestors_and_self(region_code or "")]


def empty() -> dict[str, Any]:
    """A contribution of nothing."""
    return {"scopes": [], "days": {}}


def _items_of(fact: Mapping[str, Any], resolver: Resolver) -> list[tuple[str, int | None]]:
    if fact.get("item_versions"):
        return [(i["item_id"], i.get("version")) for i in fact["item_versions"]]
    if fact.get("item_id"):
        return [(fact["item_id"], fact.get("item_version"))]
    bundle = fact.get("bundle_id")
    if bundle and fact.get("bundle_version") is not None:
        known = resolver.bundles.get((bundle, fact["bundle_version"]))
        if known is not None:
            return [(i, v) for i, v in known[1]]
    return []


def _max(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def application_contribution(
    fact: Mapping[str, Any], *, resolver: Resolver, rules: Rules
) -> dict[str, Any]:
    """What an application adds: on its submission day and on the day it finished."""
    items = _items_of(fact, resolver)
    infos = [resolver.items[(i, v)] for i, v in items if v is not None and (i, v) in resolver.items]
    bundle_owner = None
    if fact.get("bundle_id") and fact.get("bundle_version") is not None:
        bundle = resolver.bundles.get((fact["bundle_id"], fact["bundle_version"]))
        bundle_owner = bundle[0] if bundle else None
    owner = fact.get("owner_org_id") or bundle_owner
    departments = set(fact.get("department_ids") or [])
    if owner:
        departments.add(owner)
    if not departments:
        departments = {info.owner_org_id for info in infos}
    region = fact.get("region_code") or next((i.region_code for i in infos if i.region_code), None)
    scopes = [
        PLATFORM,
        *(scope("department", d) for d in sorted(departments)),
        *region_scopes(region),
        *(scope("item", i) for i in sorted({i for i, _ in items})),
    ]
    days: dict[str, Counter[str]] = {}
    submitted_at = _time(fact.get("submitted_at"))
    online = rules.is_online(fact.get("channel"))
    if submitted_at is not None:
        day = days.setdefault(local_day(submitted_at, rules.timezone).isoformat(), Counter())
        day["submitted"] += 1
        day["submitted_online"] += int(online)
    finished_at = _time(fact.get("finished_at"))
    outcome = fact.get("outcome")
    if outcome and finished_at is not None:
        day = days.setdefault(local_day(finished_at, rules.timezone).isoformat(), Counter())
        if outcome == "withdrawn":
            day["withdrawn"] += 1
        else:
            legal = fact.get("legal_limit_days")
            if legal is None:
                legal = _max(i.legal_limit_days for i in infos)
            promised = fact.get("promised_limit_days")
            if promised is None:
                promised = _max(i.promised_limit_days for i in infos)
            _finished(
                day, fact, rules=rules, online=online, submitted_at=submitted_at,
                finished_at=finished_at, legal=legal, promised=promised,
            )  # fmt: skip
    return {
        "scopes": scopes,
        "days": {d: {k: v for k, v in c.items() if v} for d, c in days.items() if any(c.values())},
    }


def _finished(
    day: Counter[str],
    fact: Mapping[str, Any],
    *,
    rules: Rules,
    online: bool,
    submitted_at: datetime | None,
    finished_at: datetime,
    legal: int | None,
    promised: int | None,
) -> None:
    """The counters of a completed or rejected application, on its finishing day."""
    outcome = fact["outcome"]
    day["finished"] += 1
    day[outcome] += 1
    visits = fact.get("visits")
    if visits is None:
        visits = 0 if online else 1
    day["zero_visit"] += int(visits == 0)
    day["online_completed"] += int(outcome == "completed" and online and visits == 0)
    working_days: int | None = fact.get("working_days_used")
    if submitted_at is not None:
        day["measured"] += 1
        minutes = int((finished_at - submitted_at).total_seconds() // 60)
        day["processing_minutes"] += max(0, minutes)
        if working_days is None:
            working_days = working_days_between(
                local_day(submitted_at, rules.timezone), local_day(finished_at, rules.timezone)
            )
    if working_days is not None:
        day["processing_wd"] += working_days
        day[f"{HISTOGRAM_PREFIX}{working_days}"] += 1
        if legal:
            day["limited"] += 1
            day["legal_days"] += legal
            day["promised_days"] += legal if promised is None else promised
            day["limited_wd"] += working_days
    due_at = _time(fact.get("due_at"))
    limit = promised if promised is not None else legal
    if fact.get("overdue"):
        day["timed"] += 1
    elif due_at is not None:
        day["timed"] += 1
        day["on_time"] += int(finished_at <= due_at)
    elif limit is not None and working_days is not None:
        day["timed"] += 1
        day["on_time"] += int(working_days <= limit)
    day["supplemented"] += int(bool(fact.get("supplemented")))
    day["materials_fetched"] += fact.get("materials_fetched") or 0
    day["materials_uploaded"] += fact.get("materials_uploaded") or 0


def review_contribution(state: Mapping[str, Any], *, rules: Rules) -> dict[str, Any]:
    """What a review adds, on the day it was first submitted."""
    created = _time(state["created_at"])
    assert created is not None
    overall = int(state["overall"])
    counters = {
        "reviews": 1,
        "rating_sum": overall,
        "satisfied": int(overall >= 4),
        "bad": int(overall <= 2),
        "speed_sum": int(state["speed"]),
        "attitude_sum": int(state["attitude"]),
        "clarity_sum": int(state["clarity"]),
        "convenience_sum": int(state["convenience"]),
    }
    return {
        "scopes": _subject_scopes(state, state.get("department_ids") or []),
        "days": {local_day(created, rules.timezone).isoformat(): counters},
    }


def case_contribution(state: Mapping[str, Any], *, rules: Rules) -> dict[str, Any]:
    """What a rectification case adds, on the day it was opened."""
    opened = _time(state["opened_at"])
    assert opened is not None
    counters = Counter({"cases_opened": 1})
    replied = _time(state.get("replied_at"))
    if state.get("status") == "confirmed" and replied is not None:
        counters["cases_rectified"] += 1
        counters["rectification_minutes"] += max(0, int((replied - opened).total_seconds() // 60))
    counters["cases_overdue"] += int(bool(state.get("overdue")))
    counters["cases_reopened"] += int((state.get("reopen_count") or 0) > 0)
    return {
        "scopes": _subject_scopes(state, [state["department_id"]]),
        "days": {local_day(opened, rules.timezone).isoformat(): dict(+counters)},
    }


def _subject_scopes(state: Mapping[str, Any], departments: Iterable[str]) -> list[str]:
    return [
        PLATFORM,
        *(scope("department", d) for d in sorted(set(departments))),
        *region_scopes(state.get("region_code")),
        *(scope("item", i) for i in sorted(set(state.get("item_ids") or []))),
    ]


def add_contribution(deltas: Deltas, contribution: Mapping[str, Any], *, sign: int) -> None:
    """Add ``sign`` times a contribution to ``deltas``."""
    days = contribution.get("days")
    if not days:
        return
    scopes = [key.split("|", 1) for key in contribution.get("scopes", [])]
    for day_text, counters in days.items():
        day = date.fromisoformat(day_text)
        change = counters if sign == 1 else {name: sign * value for name, value in counters.items()}
        for kind, scope_id in scopes:
            bucket = deltas.get((kind, scope_id, day))
            if bucket is None:
                deltas[(kind, scope_id, day)] = Counter(change)
            else:
                bucket.update(change)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)
