"""The demo province's people and organisations: departments, enterprises, citizens, officers.

Every account signs in with ``DEMO_PASSWORD`` (development only; docs/identity.md lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import httpx

from services.identity.identifiers import make_credit_code, make_resident_id

DEMO_PASSWORD = "Pingtai-Demo-2026"

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    kind: str
    name: str
    name_en: str
    region_code: str
    credit_code: str


@dataclass(frozen=True)
class DemoPerson:
    name: str
    phone: str
    resident_id: str
    # (organisation key or None for platform-wide, role)
    roles: tuple[tuple[str | None, str], ...] = ()
    acr: int = 1


def _department(key: str, name: str, name_en: str, region: str, serial: int) -> DemoOrganisation:
    return DemoOrganisation(
        key, "department", name, name_en, region,
        make_credit_code("1", "1", region, f"0024{serial:04d}"),
    )  # fmt: skip


def _enterprise(key: str, name: str, name_en: str, region: str, serial: int) -> DemoOrganisation:
    return DemoOrganisation(
        key, "enterprise", name, name_en, region,
        make_credit_code("9", "1", region, f"MA2{serial:05d}"),
    )  # fmt: skip


ORGANISATIONS: tuple[DemoOrganisation, ...] = (
    _department("data", "浙江省大数据发展管理局", "Zhejiang Big Data Development Administration", "330000", 1),
    _department("market", "杭州市市场监督管理局", "Hangzhou Administration for Market Regulation", "330100", 2),
    _department("police", "杭州市公安局", "Hangzhou Public Security Bureau", "330100", 3),
    _department("hrss", "杭州市人力资源和社会保障局", "Hangzhou Human Resources and Social Security Bureau", "330100", 4),
    _department("healthcare", "杭州市医疗保障局", "Hangzhou Healthcare Security Administration", "330100", 5),
    _department("tax", "国家税务总局杭州市税务局", "Hangzhou Municipal Tax Service", "330100", 6),
    _department("health", "杭州市卫生健康委员会", "Hangzhou Health Commission", "330100", 7),
    _department("civil", "杭州市西湖区民政局", "Xihu District Civil Affairs Bureau", "330106", 8),
    _enterprise("yunqi", "杭州云栖科技有限公司", "Hangzhou Yunqi Technology Co., Ltd.", "330106", 1),
    _enterprise("xixi", "杭州西溪餐饮管理有限公司", "Hangzhou Xixi Catering Management Co., Ltd.", "330106", 2),
    _enterprise("haishu", "宁波港城贸易有限公司", "Ningbo Port City Trading Co., Ltd.", "330203", 3),
    _enterprise("oujiang", "温州瓯江制造有限公司", "Wenzhou Oujiang Manufacturing Co., Ltd.", "330302", 4),
    _enterprise("nanhu", "嘉兴南湖物流有限公司", "Jiaxing Nanhu Logistics Co., Ltd.", "330402", 5),
)  # fmt: skip


def _person(
    number: int,
    name: str,
    region: str,
    born: date,
    *roles: tuple[str | None, str],
    acr: int = 1,
) -> DemoPerson:
    return DemoPerson(
        name=name,
        phone=f"1380000{number:04d}",
        resident_id=make_resident_id(region, born, 100 + number),
        roles=roles,
        acr=acr,
    )


PEOPLE: tuple[DemoPerson, ...] = (
    # Citizens at each assurance level.
    _person(1, "张伟", "330106", date(1988, 3, 12), acr=3),
    _person(2, "王芳", "330105", date(1992, 7, 3), acr=2),
    _person(3, "李娜", "330203", date(1979, 11, 25), acr=2),
    _person(4, "刘洋", "330302", date(2001, 1, 9)),
    _person(5, "陈静", "330110", date(1995, 5, 30)),
    # Officers (经办人) and department admins.
    _person(11, "赵磊", "330106", date(1985, 2, 14), ("market", "officer"), acr=3),
    _person(12, "孙丽", "330108", date(1980, 8, 1), ("market", "dept_admin"), acr=3),
    _person(13, "周强", "330105", date(1983, 6, 6), ("police", "officer"), acr=3),
    _person(14, "吴敏", "330106", date(1978, 9, 19), ("police", "dept_admin"), acr=3),
    _person(15, "郑杰", "330110", date(1990, 4, 22), ("hrss", "officer"), ("hrss", "dept_admin"), acr=3),
    _person(16, "冯婷", "330106", date(1987, 12, 2), ("healthcare", "officer"), acr=3),
    _person(17, "陈刚", "330108", date(1982, 10, 10), ("tax", "officer"), ("tax", "dept_admin"), acr=3),
    _person(18, "褚燕", "330105", date(1986, 3, 3), ("health", "officer"), acr=3),
    _person(19, "卫东", "330106", date(1975, 7, 7), ("civil", "officer"), ("civil", "dept_admin"), acr=3),
    _person(20, "蒋涛", "330100", date(1981, 1, 1), ("data", "dept_admin"), acr=3),
    # Enterprise agents (企业经办人).
    _person(31, "沈洁", "330106", date(1991, 2, 2), ("yunqi", "enterprise_agent"), acr=2),
    _person(32, "韩梅", "330106", date(1989, 4, 4), ("xixi", "enterprise_agent"), acr=2),
    _person(33, "杨帆", "330203", date(1984, 5, 5), ("haishu", "enterprise_agent"), acr=2),
    _person(34, "朱琳", "330302", date(1993, 6, 6), ("oujiang", "enterprise_agent"), acr=2),
    _person(35, "秦川", "330402", date(1977, 8, 8), ("nanhu", "enterprise_agent"), acr=2),
    # Platform-wide roles.
    _person(41, "许诺", "330106", date(1980, 1, 20), (None, "platform_admin"), acr=3),
    _person(42, "何平", "330105", date(1976, 11, 11), (None, "auditor"), acr=3),
    _person(43, "吕方", "330108", date(1985, 12, 12), (None, "evaluator"), acr=3),
)  # fmt: skip


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _organisation_ids(client: httpx.AsyncClient) -> dict[str, str]:
    ids: dict[str, str] = {}
    for org in ORGANISATIONS:
        created = await client.post(
            "/api/identity/v1/organisations",
            json={
                "kind": org.kind,
                "name": org.name,
                "name_en": org.name_en,
                "region_code": org.region_code,
                "credit_code": org.credit_code,
            },
        )
        await _expect(created, 201, 409)
        if created.status_code == 201:
            ids[org.key] = created.json()["id"]
            continue
        found = await client.get("/api/identity/v1/organisations", params={"name": org.name})
        matches = [o["id"] for o in (await _expect(found, 200)).json()["items"]]
        ids[org.key] = matches[0]
    return ids


async def seed_identity(client: httpx.AsyncClient, say: Say) -> int:
    """Organisations, people, their roles and assurance levels; safe to run again."""
    org_ids = await _organisation_ids(client)
    say(f"    {len(org_ids)} organisations (departments and enterprises)")
    made = len(org_ids)
    for person in PEOPLE:
        await _expect(
            await client.post(
                "/api/identity/v1/register",
                json={
                    "name": person.name,
                    "resident_id": person.resident_id,
                    "phone": person.phone,
                    "password": DEMO_PASSWORD,
                },
            ),
            202,
        )
        found = await client.get("/api/identity/v1/users", params={"phone": person.phone})
        user_id = (await _expect(found, 200)).json()["items"][0]["id"]
        if person.acr > 1:
            await _expect(
                await client.post(
                    f"/api/identity/v1/users/{user_id}/verification",
                    json={"level": person.acr, "method": "demo-seed"},
                ),
                200,
            )
        for org_key, role in person.roles:
            granted = await client.post(
                "/api/identity/v1/memberships",
                json={
                    "user_id": user_id,
                    "org_id": org_ids[org_key] if org_key else None,
                    "role": role,
                },
            )
            await _expect(granted, 201, 409)
        made += 1
    say(f"    {len(PEOPLE)} people (citizens, officers, admins, enterprise agents)")
    return made
