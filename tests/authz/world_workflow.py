"""Workflow: department A's item (individuals and enterprises may apply), the citizen's
applications in every state the rows need (draft, submitted with an open task, supplementing),
enterprise E's application, and department A's webhook."""

from __future__ import annotations

from typing import Any

from tests.authz.worlds import Target, World
from tests.workflow.helpers import GOOD_FORM, RESIDENT_ID, FakeExchange, make_item, publish_item

CITIZEN = "citizen:own"
OFFICER = "officer:same-dept"
CALENDAR = {
    "source": "国务院办公厅关于2027年部分节假日安排的通知", "source_url": "https://www.gov.cn/",
    "holidays": [{"name": "国庆节", "start": "2027-10-01", "end": "2027-10-07"}],
    "working_weekends": ["2027-09-26"],
}  # fmt: skip


class WorkflowWorld(World):
    part = "workflow"
    exchange: FakeExchange

    async def seed(self) -> None:
        self.item = make_item("zj-authz", owner=self.ids.dept_a,
                              applicant_types=["individual", "enterprise"])  # fmt: skip
        # An upload keeps an application from reaching the inbox until it is made.
        self.upload_item = make_item("zj-authz-upload", owner=self.ids.dept_a,
                                     uploads=["id_photo"])  # fmt: skip
        for item in (self.item, self.upload_item):
            await publish_item(self.app, item)
            self.exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "ok"}
        await self.call("PUT", "/v1/calendar/2027", "platform_admin", json=CALENDAR)

    def item_form(self) -> dict[str, Any]:
        return {**GOOD_FORM, "employees": 3}

    def application_body(self, *, draft: bool = False) -> dict[str, Any]:
        return {"item_id": self.item.item_id, "form": GOOD_FORM, "draft": draft}

    async def _apply(self, caller: str = CITIZEN, *, draft: bool = False) -> str:
        made = await self.call("POST", "/v1/applications", caller, 201,
                               json=self.application_body(draft=draft))  # fmt: skip
        application_id: str = made["id"]
        return application_id

    async def _open_task(self, application_id: str) -> str:
        found = await self.call("GET", "/v1/tasks", OFFICER,
                                params={"application_id": application_id})  # fmt: skip
        task_id: str = found["items"][0]["id"]
        return task_id

    async def make_application(self) -> Target:
        """The citizen's submitted application, its first task open in department A's inbox."""
        application_id = await self._apply()
        return {"application_id": application_id, "task_id": await self._open_task(application_id)}

    async def make_enterprise_application(self) -> Target:
        """Enterprise E's application, made by a colleague of the E agent who calls."""
        colleague = self.issuer.headers(sub="agent-e-colleague", org=self.ids.ent_e, acr="2",
                                        roles=["citizen", "enterprise_agent"])  # fmt: skip
        response = await self.http.post("/v1/applications", headers=colleague,
                                        json=self.application_body())  # fmt: skip
        assert response.status_code == 201, response.text
        assert response.json()["applicant_org_id"] == self.ids.ent_e
        return {"application_id": response.json()["id"]}

    async def make_draft(self) -> Target:
        return {"application_id": await self._apply(draft=True)}

    async def make_upload_draft(self) -> Target:
        """A draft of the item asking for an upload."""
        body = {"item_id": self.upload_item.item_id, "form": GOOD_FORM, "draft": True}
        made = await self.call("POST", "/v1/applications", CITIZEN, 201, json=body)
        return {"application_id": made["id"], "material": "id_photo"}

    async def make_claimed(self) -> Target:
        """A task claimed by department A's officer."""
        target = await self.make_application()
        await self.call("POST", f"/v1/tasks/{target['task_id']}/claim", OFFICER)
        return target

    async def make_supplementing(self) -> Target:
        """An application waiting for the citizen's supplement (补正)."""
        target = await self.make_application()
        await self.decide(target["task_id"], "accept")
        task_id = await self._open_task(target["application_id"])
        await self.decide(task_id, "request_supplement")
        return target

    async def decide(self, task_id: str, decision: str) -> None:
        await self.call("POST", f"/v1/tasks/{task_id}/actions", OFFICER,
                        json={"decision": decision, "comment": "请补充材料"})  # fmt: skip

    def webhook_body(self) -> dict[str, Any]:
        return {"url": "https://93.184.215.14/pingtai/webhooks",
                "event_types": ["pingtai.workflow.task.*"]}  # fmt: skip

    async def make_webhook(self) -> Target:
        made = await self.call("POST", "/v1/webhooks", "dept_admin:same-dept", 201,
                               json=self.webhook_body())  # fmt: skip
        return {"webhook_id": made["id"]}

    async def make_year(self) -> Target:
        return {"year": 2027}
