"""Bodies and calls the service-item and bundle tests share."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from tests.catalog.conftest import Issuer

PROBLEM = "application/problem+json"
MARKET = uuid.UUID(int=2).hex  # 市场监管局
POLICE = uuid.UUID(int=3).hex  # 公安局
TAX = uuid.UUID(int=6).hex  # 税务局

TEMPLATE: dict[str, Any] = {
    "start": "submitted",
    "states": [
        {"key": "submitted", "name": "已提交"},
        {"key": "review", "name": "审查"},
        {"key": "supplementing", "name": "补正中"},
        {"key": "done", "name": "办结", "end": True},
    ],
    "actions": [
        {"key": "accept", "name": "受理", "from_states": ["submitted"], "to_states": ["review"],
         "role": "officer", "sla_days": 1},
        {"key": "ask", "name": "一次性告知补正", "from_states": ["review"],
         "to_states": ["supplementing"], "role": "officer", "sla_days": 1, "supplement": True},
        {"key": "resubmit", "name": "补正提交", "from_states": ["supplementing"],
         "to_states": ["review"], "role": "officer", "sla_days": 5},
        {"key": "approve", "name": "审批", "from_states": ["review"], "to_states": ["done"],
         "role": "dept_admin", "sla_days": 3},
    ],
}  # fmt: skip

FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "credit_code": {"type": "string", "pattern": "^[0-9A-Z]{18}$", "title": "统一社会信用代码"},
        "entity_name": {"type": "string", "title": "企业名称"},
        "address": {"type": "string", "title": "经营场所"},
    },
    "required": ["credit_code", "entity_name"],
}


def item_body(code: str = "zj-market-001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "name": "食品经营许可证核发",
        "name_en": "Food business licence",
        "description": "从事食品销售和餐饮服务的经营者申请食品经营许可。",
        "owner_org_id": MARKET,
        "kind": "administrative_licence",
        "applicant_types": ["enterprise"],
        "min_assurance_level": 2,
        "legal_time_limit_days": 20,
        "promised_time_limit_days": 5,
        "max_visits": 0,
        "fee": {"amount_fen": 0, "description": "不收费"},
        "legal_basis": "《中华人民共和国食品安全法》第三十五条",
        "region_code": "330100",
        "form": copy.deepcopy(FORM),
        "materials": [
            {
                "key": "premises_photo",
                "name": "经营场所照片",
                "source": "upload",
                "upload": {
                    "content_types": ["image/jpeg", "application/pdf"],
                    "max_bytes": 5_000_000,
                },
            },
        ],  # fmt: skip
        "template": copy.deepcopy(TEMPLATE),
    }
    body.update(overrides)
    return body


def platform_admin(issuer: Issuer) -> dict[str, str]:
    return issuer.headers(roles=["platform_admin"])


def dept_admin(issuer: Issuer, org: str = MARKET) -> dict[str, str]:
    return issuer.headers(roles=["dept_admin"], org=org)


async def create_item(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/items", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def published_item(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    created = await create_item(client, headers, body)
    response = await client.post(f"/v1/items/{created['id']}/publish", headers=headers)
    assert response.status_code == 201, response.text
    return created


def legal_entity_dataset() -> dict[str, Any]:
    return {
        "code": "zj-legal-entity",
        "name": "法人基础信息",
        "owner_org_id": MARKET,
        "region_code": "330000",
        "fields": [
            {"name": "credit_code", "type": "string", "sensitivity": "public"},
            {"name": "entity_name", "type": "string", "sensitivity": "public"},
            {"name": "legal_representative", "type": "string", "sensitivity": "internal"},
        ],
        "subject_key": {"kind": "credit_code", "field": "credit_code"},
        "share_type": "unconditional",
        "open_type": "open",
        "update_frequency": "realtime",
        "hosting": {"mode": "hosted"},
    }


async def published_dataset(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/v1/datasets", json=legal_entity_dataset(), headers=headers)
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    published = await client.post(f"/v1/datasets/{dataset_id}/publish", headers=headers)
    assert published.status_code in (200, 201), published.text
    return dataset_id


def sourced(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "dataset_id": dataset_id,
        "applicant_field": "credit_code",
        "fields": ["entity_name", "legal_representative"],
    }
    source.update(overrides)
    return {"key": "business_licence", "name": "营业执照", "source": "dataset", "dataset": source}
