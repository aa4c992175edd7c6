"""A hand-made event sequence whose every indicator is worked out by hand in the tests.

Times are UTC; evaluation counts days in Asia/Shanghai (UTC+8). November 2026: Monday 2nd.

Catalog: item A (department D1, region 330106 西湖区, legal 20 / promised 5 working days) and
item B (department D2, region 330100 杭州市, legal 10 / promised 3).

- app1: item A, online; submitted Mon 2 01:00 (3 of 4 materials fetched), completed Wed 4
  02:00: 49 h, 2 working days; materials 3 fetched / 1 uploaded.
- app2: item A, counter; submitted Mon 2 02:00 (none fetched, one still being fetched), started
  (1 fetched / 3 uploaded), supplement, completed Tue 10 02:00: 192 h, 6 working days (late).
- app3: item B, online; submitted Tue 3 00:00, rejected Tue 3 08:00: 8 h, 0 working days; due
  Fri 6 (on time); materials 2 / 0 at submission only.
- app4: item B, online; submitted Tue 3 01:00, withdrawn Tue 3 17:30 (Wed 4 local time).
- app5: item A, online; submitted Wed 4 03:00, not finished.
- app6: item B, online; submitted Mon 2 03:00, SLA overdue, completed Thu 5 03:00: 72 h,
  working_days_used 3, visits 0; a task for D3.

Reviews: r1 on app1 (5, 5, 4, 5, 5), r2 on app2 first (2, ...) then revision 2 (1, 2, 3, 1, 2),
r3 on app3 (2, 3, 3, 2, 4). Cases: c1 (r2, D1) opened Tue 10 04:00, replied 10:00, confirmed;
c2 (r3, D2) opened Tue 3 09:00, overdue, open.
Exchange: D2 reads D1's data twice (granted) and once refused; three open-data reads of D1's data;
D1 imports 100 records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.common.events import CloudEvent

D1, D2, D3, E1 = "d1" * 16, "d2" * 16, "d3" * 16, "e1" * 16
ITEM_A, ITEM_B = "a" * 32, "b" * 32
CITIZEN = "citizen-1"
OTHER_CITIZEN = "citizen-2"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


_counter = 0


def event(kind: str, data: dict[str, Any], *, time: datetime, subject: str = "") -> CloudEvent:
    """A CloudEvent of type ``pingtai.<kind>`` with a fresh id."""
    global _counter
    _counter += 1
    part = kind.split(".")[0]
    return CloudEvent(
        id=f"ev{_counter:06d}-{kind.replace('.', '-')}"[:64],
        source=f"/pingtai/{part}",
        type=f"pingtai.{kind}",
        time=time,
        subject=subject or None,
        data=data,
    )


def catalog_events() -> list[CloudEvent]:
    """Items A and B, and the organisations."""
    items = [
        (ITEM_A, "item-a", D1, "330106", 20, 5),
        (ITEM_B, "item-b", D2, "330100", 10, 3),
    ]
    found = [
        event(
            "catalog.item.published",
            {
                "item_id": item,
                "code": code,
                "owner_org_id": owner,
                "version": 1,
                "snapshot": {
                    "name": f"事项{code[-1].upper()}",
                    "region_code": region,
                    "legal_time_limit_days": legal,
                    "promised_time_limit_days": promised,
                    "max_visits": 0,
                },
            },
            time=at(1, 0),
            subject=item,
        )  # fmt: skip
        for item, code, owner, region, legal, promised in items
    ]
    organisations = [
        (D1, "department", "西湖区某局", "330106"),
        (D2, "department", "杭州市某局", "330100"),
        (D3, "department", "杭州市另一局", "330100"),
        (E1, "enterprise", "某公司", "330106"),
    ]
    found += [
        event(
            "identity.organisation.registered",
            {"org_id": org, "kind": kind, "name": name, "region_code": region},
            time=at(1, 0),
            subject=org,
        )
        for org, kind, name, region in organisations
    ]
    return found


def _app(kind: str, app: str, when: datetime, **data: Any) -> CloudEvent:
    return event(
        f"workflow.application.{kind}",
        {"application_id": app, "applicant_id": CITIZEN, **data},
        time=when,
        subject=app,
    )


def workflow_events() -> list[CloudEvent]:
    """The six applications' lifecycles."""
    a = {"item_id": ITEM_A, "item_version": 1, "owner_org_id": D1}
    b = {"item_id": ITEM_B, "item_version": 1, "owner_org_id": D2}
    return [
        _app("submitted", "app1", at(2, 1), **a, channel="online",
             materials_total=4, materials_fetched=3, materials_pending=0),
        event("workflow.task.created", {"application_id": "app1", "department_org_id": D1},
              time=at(2, 1), subject="t1"),
        _app("completed", "app1", at(4, 2), decided_at="2026-11-04T02:00:00Z"),
        _app("submitted", "app2", at(2, 2), **a, channel="counter",
             materials_total=4, materials_fetched=0, materials_pending=1),
        _app("started", "app2", at(2, 4), materials_fetched=1, materials_uploaded=3),
        _app("supplement_requested", "app2", at(3, 2)),
        _app("completed", "app2", at(10, 2)),
        _app("submitted", "app3", at(3, 0), **b, channel="online", due_at="2026-11-06T15:59:59Z",
             materials_fetched=2, materials_uploaded=0),
        _app("rejected", "app3", at(3, 8)),
        _app("submitted", "app4", at(3, 1), **b, channel="online"),
        _app("withdrawn", "app4", at(3, 17, 30)),
        _app("submitted", "app5", at(4, 3), **a, channel="online"),
        _app("submitted", "app6", at(2, 3), **b, channel="online"),
        event("workflow.task.created", {"application_id": "app6", "department_org_id": D3},
              time=at(2, 3), subject="t6"),
        event("workflow.sla.overdue",
              {"application_id": "app6", "kind": "application", "department_org_id": D2,
               "clock_id": "k6", "ref_id": "app6", "round": 1,
               "started_at": "2026-11-02T03:00:00Z", "due_at": "2026-11-04T15:59:59Z"},
              time=at(4, 16), subject="k6"),
        _app("completed", "app6", at(5, 3), working_days_used=3, visits=0),
    ]  # fmt: skip


def review_state(
    review: str, app: str, revision: int, ratings: tuple[int, int, int, int, int], *,
    created: datetime, department: str, item: str, region: str,
) -> dict[str, Any]:  # fmt: skip
    """A review event's data."""
    overall, speed, attitude, clarity, convenience = ratings
    return {
        "review_id": review, "revision": revision, "application_id": app,
        "outcome": "completed", "item_ids": [item], "service_code": None,
        "department_ids": [department], "region_code": region, "channel": "online",
        "overall": overall, "speed": speed, "attitude": attitude, "clarity": clarity,
        "convenience": convenience, "has_comment": False,
        "created_at": created.isoformat(), "updated_at": created.isoformat(),
    }  # fmt: skip


def case_state(
    case: str, review: str, revision: int, status: str, *, opened: datetime,
    department: str, item: str, region: str, replied: datetime | None = None,
    overdue: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A case event's data."""
    return {
        "case_id": case, "revision": revision, "review_id": review, "application_id": "x",
        "department_id": department, "item_ids": [item], "region_code": region,
        "status": status, "opened_at": opened.isoformat(), "deadline": opened.isoformat(),
        "replied_at": replied.isoformat() if replied else None, "confirmed_at": None,
        "reopen_count": 0, "overdue": overdue,
    }  # fmt: skip


def own_events() -> list[CloudEvent]:
    """Reviews and cases, as evaluation itself publishes them."""
    r1 = review_state("r1", "app1", 1, (5, 5, 4, 5, 5), created=at(4, 3), department=D1,
                      item=ITEM_A, region="330106")  # fmt: skip
    r2 = review_state("r2", "app2", 1, (2, 2, 3, 2, 2), created=at(10, 3), department=D1,
                      item=ITEM_A, region="330106")  # fmt: skip
    r2b = {**r2, "revision": 2, "overall": 1, "clarity": 1}
    r3 = review_state("r3", "app3", 1, (2, 3, 3, 2, 4), created=at(3, 9), department=D2,
                      item=ITEM_B, region="330100")  # fmt: skip
    common1 = {"department": D1, "item": ITEM_A, "region": "330106", "opened": at(10, 4)}
    c1 = [
        case_state("c1", "r2", 1, "open", **common1),  # type: ignore[arg-type]
        case_state("c1", "r2", 2, "replied", replied=at(10, 10), **common1),  # type: ignore[arg-type]
        case_state("c1", "r2", 3, "confirmed", replied=at(10, 10), **common1),  # type: ignore[arg-type]
    ]
    common2 = {"department": D2, "item": ITEM_B, "region": "330100", "opened": at(3, 9)}
    c2 = [
        case_state("c2", "r3", 1, "open", **common2),  # type: ignore[arg-type]
        case_state("c2", "r3", 2, "open", overdue=True, **common2),  # type: ignore[arg-type]
    ]
    reviews = [
        event("evaluation.review.submitted", r1, time=at(4, 3), subject="r1"),
        event("evaluation.review.submitted", r2, time=at(10, 3), subject="r2"),
        event("evaluation.review.updated", r2b, time=at(10, 3, 30), subject="r2"),
        event("evaluation.review.submitted", r3, time=at(3, 9), subject="r3"),
    ]
    cases = [
        event(f"evaluation.case.{kind}", state, time=at(10, 11), subject=state["case_id"])
        for kind, state in zip(["opened", "replied", "confirmed", "opened", "overdue"],
                               c1 + c2, strict=True)
    ]  # fmt: skip
    return reviews + cases


def exchange_events() -> list[CloudEvent]:
    """Data reads between departments, refusals, a read the source failed, open data, an import."""

    def access(outcome: str, basis: str, actor: str | None, day: int) -> CloudEvent:
        return event(
            "exchange.access.recorded",
            {"dataset_id": "ds1", "owner_org_id": D1, "actor_org_id": actor,
             "basis_kind": basis, "outcome": outcome,
             "recorded_at": at(day, 2).isoformat()},
            time=at(day, 2), subject="ds1",
        )  # fmt: skip

    return [
        access("granted", "application", D2, 2),
        access("granted", "application", D2, 3),
        access("refused", "application", D2, 3),
        # The source failed to deliver (exchange outcome "failed"): the owner's exchange_failed.
        access("failed", "application", D2, 3),
        access("granted", "open_data", None, 4),
        access("granted", "open_data", E1, 4),
        access("granted", "open_data", None, 5),
        event("exchange.records.imported", {"dataset_id": "ds1", "owner_org_id": D1,
              "accepted": 100, "rejected": 2}, time=at(2, 5), subject="ds1"),
    ]  # fmt: skip


def all_events() -> list[CloudEvent]:
    """Every event of the scenario, in the order they happened per stream."""
    return catalog_events() + workflow_events() + own_events() + exchange_events()
