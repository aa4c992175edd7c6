"""Evaluation: the scenario's catalogue and applications (department A = D1, B = D2, the
citizen applied for all of them) fed to the projection as the consumers would, plus three more
finished applications of department A; the citizen's good review and three bad ones, whose
rectification cases are open, replied, replied."""

from __future__ import annotations

from typing import Any

from libs.common.events import CloudEvent
from tests.authz.worlds import Target, World
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project

CITIZEN = "citizen:own"
ADMIN_A = "dept_admin:same-dept"
PERIOD = "2026-11"


def finished(application_id: str) -> list[CloudEvent]:
    """An online application of item A (department A) by the citizen, completed."""
    common = {"application_id": application_id, "applicant_id": scenario.CITIZEN}
    submitted = {**common, "item_id": scenario.ITEM_A, "item_version": 1,
                 "owner_org_id": scenario.D1, "channel": "online"}  # fmt: skip
    return [
        scenario.event(
            "workflow.application.submitted",
            submitted,
            time=scenario.at(20, 1),
            subject=application_id,
        ),  # fmt: skip
        scenario.event(
            "workflow.application.completed",
            common,
            time=scenario.at(21, 1),
            subject=application_id,
        ),  # fmt: skip
    ]


def ratings(overall: int) -> dict[str, int]:
    return dict.fromkeys(("overall", "speed", "attitude", "clarity", "convenience"), overall)


class EvaluationWorld(World):
    part = "evaluation"

    async def seed(self) -> None:
        extra = [e for app in ("app7", "app8", "app9") for e in finished(app)]
        await project(
            database_of(self.app),
            scenario.catalog_events() + scenario.workflow_events() + extra,
        )

    async def review(self, application_id: str, overall: int) -> dict[str, Any]:
        body = {"application_id": application_id, **ratings(overall), "comment": "评价内容"}
        made: dict[str, Any] = await self.call("POST", "/v1/reviews", CITIZEN, 201, json=body)
        return made

    async def case_of(self, application_id: str, *, replied: bool) -> Target:
        await self.review(application_id, 1)
        cases = await self.call("GET", "/v1/cases", CITIZEN)
        [case] = [c for c in cases["items"] if c["application_id"] == application_id]
        if replied:
            await self.call("POST", f"/v1/cases/{case['id']}/reply", ADMIN_A,
                            json={"reply": "已核实", "fix": "已整改"})  # fmt: skip
        return {"case_id": case["id"]}

    async def make_review(self) -> Target:
        """The citizen's good review of department A's application."""
        return {"review_id": (await self.review("app1", 5))["id"]}

    async def make_open_case(self) -> Target:
        return await self.case_of("app2", replied=False)

    async def make_replied_case(self) -> Target:
        return await self.case_of("app7", replied=True)

    async def make_reopenable_case(self) -> Target:
        return await self.case_of("app8", replied=True)

    async def make_version(self) -> Target:
        return {"version": 0}
