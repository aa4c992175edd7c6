"""Synthetic records for the demo province's hosted datasets, keyed by the demo citizens'
resident identity numbers and the demo enterprises' credit codes (pingtai.demo.identity).

Federated demo datasets keep their records in their departments' systems, so nothing is loaded
for them. The records go through the exchange's import API like any department's upload; a
second run changes nothing (every row comes back "unchanged").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from pingtai.demo.identity import ORGANISATIONS, PEOPLE

Say = Callable[[str], None]
Record = dict[str, Any]

# How long to wait for the exchange to learn the catalogue's datasets (through NATS).
WAIT_FOR_DATASETS_S = 60.0

ENTERPRISES = [org for org in ORGANISATIONS if org.kind == "enterprise"]
_BUSINESS = {
    "yunqi": ("有限责任公司", "软件开发；信息技术咨询服务；数据处理服务", 500.0, 86),
    "xixi": ("有限责任公司", "餐饮服务；食品销售；餐饮管理", 100.0, 45),
    "haishu": ("有限责任公司", "货物进出口；国内贸易代理；供应链管理服务", 1000.0, 32),
    "oujiang": ("股份有限公司", "通用设备制造；五金产品制造；金属制品销售", 3000.0, 240),
    "nanhu": ("有限责任公司", "道路货物运输；仓储服务；国际货物运输代理", 800.0, 120),
}  # fmt: skip
_REPRESENTATIVES = {"yunqi": "沈洁", "xixi": "韩梅", "haishu": "杨帆", "oujiang": "朱琳",
                    "nanhu": "秦川"}  # fmt: skip


def _established(serial: int) -> date:
    return date(2012, 3, 15) + timedelta(days=410 * serial)


def legal_entities() -> list[Record]:
    """法人基础信息: the demo enterprises."""
    return [
        {
            "credit_code": org.credit_code,
            "entity_name": org.name,
            "entity_type": _BUSINESS[org.key][0],
            "legal_representative": _REPRESENTATIVES[org.key],
            "registered_capital": _BUSINESS[org.key][2],
            "established_on": _established(serial).isoformat(),
            "registered_address": f"浙江省{org.name[:2]}市示例路{serial * 11}号",
            "business_scope": _BUSINESS[org.key][1],
            "operating_status": "存续",
        }
        for serial, org in enumerate(ENTERPRISES, start=1)
    ]


def tax_registrations() -> list[Record]:
    """税务登记信息: the demo enterprises."""
    return [
        {
            "credit_code": org.credit_code,
            "taxpayer_name": org.name,
            "taxpayer_type": "一般纳税人" if _BUSINESS[org.key][2] >= 500 else "小规模纳税人",
            "tax_authority": "国家税务总局杭州市西湖区税务局",
            "registered_on": (_established(serial) + timedelta(days=20)).isoformat(),
            "status": "正常",
        }
        for serial, org in enumerate(ENTERPRISES, start=1)
    ]


def annual_reports() -> list[Record]:
    """企业年度报告信息: last year's report of each demo enterprise."""
    return [
        {
            "credit_code": org.credit_code,
            "entity_name": org.name,
            "report_year": 2025,
            "operating_status": "开业",
            "employees": _BUSINESS[org.key][3],
            "website": f"https://www.{org.key}.example.cn",
            "submitted_on": date(2026, 4, 10 + serial).isoformat(),
        }
        for serial, org in enumerate(ENTERPRISES, start=1)
    ]


def medical_insurance() -> list[Record]:
    """医疗保险参保信息: every demo person is insured where they live."""
    return [
        {
            "resident_id": person.resident_id,
            "name": person.name,
            "insured_type": "城乡居民" if index % 3 == 2 else "职工",
            "enrolled_on": date(2015 + index % 8, 1 + index % 12, 1).isoformat(),
            "insurance_region": person.resident_id[:6],
            "status": "正常参保",
        }
        for index, person in enumerate(PEOPLE)
    ]


def health_facilities() -> list[Record]:
    """医疗卫生机构信息: a few facilities of Hangzhou (synthetic codes and coordinates)."""
    facilities = [
        ("PDY33010601", "西湖区示例社区卫生服务中心", "社区卫生服务中心", "一级", "330106", 30),
        ("PDY33010602", "杭州市示例第一人民医院", "综合医院", "三级甲等", "330106", 1200),
        ("PDY33010501", "拱墅区示例中医院", "中医医院", "二级甲等", "330105", 300),
        ("PDY33011001", "余杭区示例妇幼保健院", "妇幼保健院", "二级甲等", "330110", 260),
    ]  # fmt: skip
    return [
        {
            "facility_code": code,
            "facility_name": name,
            "facility_type": kind,
            "grade": grade,
            "address": f"浙江省杭州市示例大道{index * 100 + 8}号",
            "district_code": district,
            "phone": f"0571-8800{index:04d}",
            "beds": beds,
            "longitude": round(120.10 + index * 0.013, 6),
            "latitude": round(30.25 + index * 0.011, 6),
        }
        for index, (code, name, kind, grade, district, beds) in enumerate(facilities, start=1)
    ]


RECORDS: dict[str, Callable[[], list[Record]]] = {
    "zj-legal-entity": legal_entities,
    "zj-tax-registration": tax_registrations,
    "zj-enterprise-annual-report": annual_reports,
    "zj-medical-insurance": medical_insurance,
    "zj-health-facilities": health_facilities,
}


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _exchange_datasets(client: httpx.AsyncClient) -> dict[str, str]:
    """The exchange's datasets, code -> id."""
    ids: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await _expect(await client.get("/api/exchange/v1/datasets", params=params), 200)
        body = page.json()
        ids.update({d["code"]: d["id"] for d in body["items"]})
        cursor = body["next_cursor"]
        if not cursor:
            return ids


async def _wait_for_datasets(client: httpx.AsyncClient, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = await _exchange_datasets(client)
        missing = sorted(set(RECORDS) - set(ids))
        if not missing:
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the exchange has not learnt the datasets {missing} from the catalogue "
                f"within {timeout_s:.0f}s: are the catalog step and NATS running?"
            )
        await asyncio.sleep(0.5)


async def seed_exchange_records(
    client: httpx.AsyncClient, say: Say, *, wait_s: float = WAIT_FOR_DATASETS_S
) -> int:
    """Push the demo records to the hosted demo datasets; safe to run again."""
    ids = await _wait_for_datasets(client, wait_s)
    total = new = 0
    for code, make in RECORDS.items():
        records = make()
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        response = await client.post(
            f"/api/exchange/v1/datasets/{ids[code]}/records",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        summary = (await _expect(response, 200)).json()
        if summary["rejected"]:
            raise RuntimeError(f"{code}: demo records refused: {summary['errors'][:3]}")
        total += len(records)
        new += summary["inserted"] + summary["updated"]
    say(f"    {total} records in {len(RECORDS)} hosted datasets ({new} new or changed)")
    return total
