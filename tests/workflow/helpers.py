"""Catalogue versions for workflow's tests, a fake exchange, and the demo process template."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from libs.common.events import new_event
from services.workflow.catalogue.events import BundlePublished, ItemPublished
from services.workflow.catalogue.service import apply_catalog_event

PERSON_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resident_id": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
        "name": {"type": "string", "maxLength": 50},
        "phone": {"type": "string", "pattern": "^1[0-9]{10}$"},
        "employees": {"type": "integer", "minimum": 0},
    },
    "required": ["resident_id", "name", "phone"],
}
RESIDENT_ID = "330106198803121234"
GOOD_FORM = {"resident_id": RESIDENT_ID, "name": "张伟", "phone": "13800000001"}


def org_id() -> str:
    return uuid.uuid4().hex


def template(*, supplement_days: int = 1, admin_review: bool = False) -> dict[str, Any]:
    """The demo items' template: accept, one supplement, approve or reject (``admin_review``:
    by a department admin, as the demo province's items do)."""
    reviewer = "dept_admin" if admin_review else "officer"
    return {
        "start": "submitted",
        "states": [
            {"key": "submitted", "name": "已提交"},
            {"key": "accepted", "name": "已受理"},
            {"key": "supplementing", "name": "补正中"},
            {"key": "approved", "name": "已办结", "end": True},
            {"key": "rejected", "name": "不予许可", "end": True},
        ],
        "actions": [
            {"key": "accept", "name": "受理", "from_states": ["submitted"],
             "to_states": ["accepted"], "role": "officer", "sla_days": 1},
            {"key": "request_supplement", "name": "一次性告知补正", "from_states": ["accepted"],
             "to_states": ["supplementing"], "role": "officer", "sla_days": supplement_days,
             "supplement": True},
            {"key": "resubmit", "name": "补正后重新受理", "from_states": ["supplementing"],
             "to_states": ["accepted"], "role": "officer", "sla_days": 5},
            {"key": "approve", "name": "审核办结", "from_states": ["accepted"],
             "to_states": ["approved"], "role": reviewer, "sla_days": 3},
            {"key": "reject", "name": "不予许可", "from_states": ["accepted"],
             "to_states": ["rejected"], "role": reviewer, "sla_days": 3},
        ],
    }  # fmt: skip


@dataclass
class Item:
    item_id: str
    owner: str
    dataset_id: str
    code: str
    version: int = 1
    uploads: list[str] = field(default_factory=list)
    applicant_types: list[str] = field(default_factory=lambda: ["individual"])
    min_acr: int = 2
    admin_review: bool = False

    def snapshot(self) -> dict[str, Any]:
        materials: list[dict[str, Any]] = [
            {"key": f"record_{self.code.replace('-', '_')}", "name": f"记录 {self.code}",
             "source": "dataset", "dataset": {"dataset_id": self.dataset_id,
                                              "applicant_field": "resident_id",
                                              "fields": ["name", "status"]}},
        ]  # fmt: skip
        materials += [
            {"key": key, "name": key, "source": "upload",
             "upload": {"content_types": ["application/pdf", "image/png"], "max_bytes": 1024}}
            for key in self.uploads
        ]  # fmt: skip
        return {
            "item_id": self.item_id, "code": self.code, "name": f"事项 {self.code}",
            "owner_org_id": self.owner, "applicant_types": self.applicant_types,
            "min_assurance_level": self.min_acr, "promised_time_limit_days": 5,
            "legal_time_limit_days": 20, "form": PERSON_FORM, "materials": materials,
            "template": template(admin_review=self.admin_review), "kind": "public_service",
            "region_code": "330100",
        }  # fmt: skip


def make_item(code: str, **kwargs: Any) -> Item:
    owner = kwargs.pop("owner", org_id())
    dataset_id = kwargs.pop("dataset_id", uuid.uuid4().hex)
    return Item(item_id=uuid.uuid4().hex, owner=owner, dataset_id=dataset_id, code=code, **kwargs)


def bundle_snapshot(bundle_id: str, items: list[Item]) -> dict[str, Any]:
    materials = []
    for item in items:
        for material in item.snapshot()["materials"]:
            materials.append({**material, "item_ids": [item.item_id]})
    return {
        "bundle_id": bundle_id, "code": "bundle-test", "name": "测试一件事", "owner_org_id": None,
        "item_ids": [i.item_id for i in items],
        "items": [{"item_id": i.item_id, "version": i.version, "code": i.code,
                   "name": f"事项 {i.code}", "owner_org_id": i.owner} for i in items],
        "merged_form": {**PERSON_FORM, "title": "测试一件事"},
        "field_sources": {}, "materials": materials,
    }  # fmt: skip


async def publish_item(app: FastAPI, item: Item) -> None:
    """Apply catalog's item.published event to workflow's read copy, as the consumer would."""
    event = new_event(
        ItemPublished(item_id=item.item_id, code=item.code, owner_org_id=item.owner,
                      version=item.version, snapshot=item.snapshot()),
        subject=item.item_id,
    )  # fmt: skip
    async with app.state.database.sessionmaker() as session, session.begin():
        await apply_catalog_event(session, event)


async def publish_bundle(app: FastAPI, items: list[Item]) -> str:
    bundle_id = uuid.uuid4().hex
    for item in items:
        await publish_item(app, item)
    event = new_event(
        BundlePublished(bundle_id=bundle_id, code="bundle-test", owner_org_id=None, version=1,
                        snapshot=bundle_snapshot(bundle_id, items)),
        subject=bundle_id,
    )  # fmt: skip
    async with app.state.database.sessionmaker() as session, session.begin():
        await apply_catalog_event(session, event)
    return bundle_id


@dataclass
class FakeExchange:
    """Exchange's batch query and identity's token endpoint, answered in memory."""

    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0

    def handler(self) -> Callable[[httpx.Request], httpx.Response]:
        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/oauth2/token"):
                return httpx.Response(200, json={"access_token": "wf-token", "expires_in": 300})
            if self.down:
                raise httpx.ConnectError("exchange is down", request=request)
            dataset_id = request.url.path.split("/")[-2]
            body = json.loads(request.content)
            self.calls.append({"dataset_id": dataset_id, "body": body,
                               "on_behalf_of": request.headers.get("x-on-behalf-of")})  # fmt: skip
            items = []
            for subject in body["subjects"]:
                self.position += 1
                record = self.records.get((dataset_id, subject["subject_key"]))
                items.append({
                    "subject_key": subject["subject_key"],
                    "outcome": "read" if record is not None else "not_found",
                    "record": record, "masked_fields": [], "reason": None,
                    "ledger_position": self.position,
                })  # fmt: skip
            return httpx.Response(200, json={"dataset_id": dataset_id, "fields": [],
                                             "items": items})  # fmt: skip

        return handle
