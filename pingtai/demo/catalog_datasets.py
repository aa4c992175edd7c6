"""The demo province's data-resource catalogue (政务信息资源目录): ten published datasets owned by
the identity seed's departments.

Service items reference these codes for materials sourced from data (docs/catalog.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from pingtai.demo.identity import ORGANISATIONS

Say = Callable[[str], None]

PERSONAL_DATA_REASON = (
    "涉及个人信息，依据《中华人民共和国个人信息保护法》第十三条、第二十八条列入不予开放负面清单"
)


@dataclass(frozen=True)
class DemoDataset:
    code: str
    owner: str  # the key of a department in pingtai.demo.identity.ORGANISATIONS
    body: dict[str, Any]


def _fields(*specs: tuple[str, str, str, str]) -> list[dict[str, str]]:
    return [
        {"name": name, "type": kind, "sensitivity": sensitivity, "description": description}
        for name, kind, sensitivity, description in specs
    ]


def _dataset(
    code: str,
    owner: str,
    *,
    name: str,
    name_en: str,
    description: str,
    region_code: str,
    fields: list[dict[str, str]],
    subject: tuple[str, str],
    share_type: str,
    open_type: str,
    update_frequency: str,
    endpoint_url: str | None = None,
    not_open_reason: str | None = None,
) -> DemoDataset:
    hosting: dict[str, Any] = (
        {"mode": "federated", "endpoint_url": endpoint_url} if endpoint_url else {"mode": "hosted"}
    )
    body: dict[str, Any] = {
        "code": code,
        "name": name,
        "name_en": name_en,
        "description": description,
        "region_code": region_code,
        "fields": fields,
        "subject_key": {"kind": subject[0], "field": subject[1]},
        "share_type": share_type,
        "open_type": open_type,
        "update_frequency": update_frequency,
        "hosting": hosting,
    }
    if not_open_reason:
        body["not_open_reason"] = not_open_reason
    return DemoDataset(code, owner, body)


DATASETS: tuple[DemoDataset, ...] = (
    _dataset(
        "zj-population-basic", "police",
        name="人口基础信息", name_en="Population basic information",
        description="户籍与常住人口的基础身份信息，由公安机关维护，按身份证号查询。",
        region_code="330100",
        fields=_fields(
            ("resident_id", "string", "personal", "公民身份号码"),
            ("name", "string", "personal", "姓名"),
            ("sex", "string", "personal", "性别（GB/T 2261.1）"),
            ("birth_date", "date", "personal", "出生日期"),
            ("ethnicity", "string", "personal", "民族"),
            ("household_address", "string", "personal", "户籍地址"),
        ),
        subject=("resident_id", "resident_id"),
        share_type="conditional", open_type="not_open", not_open_reason=PERSONAL_DATA_REASON,
        update_frequency="daily",
        endpoint_url="https://gaj.hangzhou.gov.cn/data-api/population-basic",
    ),
    _dataset(
        "zj-legal-entity", "market",
        name="法人基础信息", name_en="Legal entity registration",
        description="企业、个体工商户和农民专业合作社的登记信息，依法公示。",
        region_code="330100",
        fields=_fields(
            ("credit_code", "string", "public", "统一社会信用代码"),
            ("entity_name", "string", "public", "名称"),
            ("entity_type", "string", "public", "市场主体类型"),
            ("legal_representative", "string", "public", "法定代表人（依法公示）"),
            ("registered_capital", "number", "public", "注册资本（万元）"),
            ("established_on", "date", "public", "成立日期"),
            ("registered_address", "string", "public", "住所"),
            ("business_scope", "string", "public", "经营范围"),
            ("operating_status", "string", "public", "登记状态"),
        ),
        subject=("credit_code", "credit_code"),
        share_type="unconditional", open_type="open", update_frequency="realtime",
    ),
    _dataset(
        "zj-real-estate", "data",
        name="不动产登记信息", name_en="Real estate registration",
        description="不动产权利登记信息，由省大数据局从自然资源部门归集，按权利人身份证号查询。",
        region_code="330000",
        fields=_fields(
            ("certificate_no", "string", "sensitive", "不动产权证书号"),
            ("owner_resident_id", "string", "personal", "权利人身份证号"),
            ("owner_name", "string", "personal", "权利人姓名"),
            ("property_address", "string", "sensitive", "坐落"),
            ("usage", "string", "internal", "用途"),
            ("area_sqm", "number", "internal", "建筑面积（平方米）"),
            ("registered_on", "date", "internal", "登记日期"),
        ),
        subject=("resident_id", "owner_resident_id"),
        share_type="conditional", open_type="not_open",
        not_open_reason="涉及个人财产信息，依据《不动产登记暂行条例》第二十七、二十八条不予开放",
        update_frequency="daily",
        endpoint_url="https://zrzyt.zj.gov.cn/data-api/real-estate",
    ),
    _dataset(
        "zj-social-insurance", "hrss",
        name="社会保险参保缴费信息", name_en="Social insurance contributions",
        description="养老、失业、工伤保险的参保与缴费记录，用于社保转移、待遇核定和就业服务。",
        region_code="330100",
        fields=_fields(
            ("resident_id", "string", "personal", "公民身份号码"),
            ("name", "string", "personal", "姓名"),
            ("insurance_type", "string", "internal", "险种"),
            ("employer_credit_code", "string", "internal", "参保单位统一社会信用代码"),
            ("contribution_base", "number", "sensitive", "缴费基数（元）"),
            ("paid_months", "integer", "internal", "累计缴费月数"),
            ("last_paid_month", "date", "internal", "最近缴费月份"),
            ("status", "string", "internal", "参保状态"),
        ),
        subject=("resident_id", "resident_id"),
        share_type="conditional", open_type="not_open", not_open_reason=PERSONAL_DATA_REASON,
        update_frequency="monthly",
        endpoint_url="https://hrss.hangzhou.gov.cn/data-api/social-insurance",
    ),
    _dataset(
        "zj-medical-insurance", "healthcare",
        name="基本医疗保险参保信息", name_en="Medical insurance enrolment",
        description="职工与城乡居民基本医疗保险的参保登记信息。",
        region_code="330100",
        fields=_fields(
            ("resident_id", "string", "personal", "公民身份号码"),
            ("name", "string", "personal", "姓名"),
            ("insured_type", "string", "internal", "参保类别（职工/城乡居民）"),
            ("enrolled_on", "date", "internal", "参保日期"),
            ("insurance_region", "string", "internal", "参保地行政区划代码"),
            ("status", "string", "internal", "参保状态"),
        ),
        subject=("resident_id", "resident_id"),
        share_type="conditional", open_type="not_open", not_open_reason=PERSONAL_DATA_REASON,
        update_frequency="daily",
    ),
    _dataset(
        "zj-birth-certificate", "health",
        name="出生医学证明信息", name_en="Birth medical certificates",
        description="助产机构签发的出生医学证明，供出生“一件事”办理户口登记、医保和社保卡。",
        region_code="330100",
        fields=_fields(
            ("certificate_no", "string", "sensitive", "出生医学证明编号"),
            ("child_name", "string", "personal", "新生儿姓名"),
            ("child_sex", "string", "personal", "新生儿性别"),
            ("birth_datetime", "datetime", "personal", "出生时间"),
            ("birth_place", "string", "internal", "出生地点"),
            ("hospital_name", "string", "internal", "助产机构"),
            ("mother_resident_id", "string", "personal", "母亲身份证号"),
            ("mother_name", "string", "personal", "母亲姓名"),
            ("father_resident_id", "string", "personal", "父亲身份证号"),
            ("father_name", "string", "personal", "父亲姓名"),
        ),
        subject=("resident_id", "mother_resident_id"),
        share_type="conditional", open_type="not_open", not_open_reason=PERSONAL_DATA_REASON,
        update_frequency="realtime",
        endpoint_url="https://wsjkw.hangzhou.gov.cn/data-api/birth-certificates",
    ),
    _dataset(
        "zj-tax-registration", "tax",
        name="纳税人登记信息", name_en="Tax registration",
        description="纳税人的税务登记与纳税人资格信息，依申请开放。",
        region_code="330100",
        fields=_fields(
            ("credit_code", "string", "public", "统一社会信用代码（纳税人识别号）"),
            ("taxpayer_name", "string", "public", "纳税人名称"),
            ("taxpayer_type", "string", "internal", "纳税人资格（一般纳税人/小规模纳税人）"),
            ("tax_authority", "string", "internal", "主管税务机关"),
            ("registered_on", "date", "internal", "登记日期"),
            ("status", "string", "internal", "纳税人状态"),
        ),
        subject=("credit_code", "credit_code"),
        share_type="unconditional", open_type="conditional", update_frequency="daily",
    ),
    _dataset(
        "zj-marriage", "civil",
        name="婚姻登记信息", name_en="Marriage registration",
        description="结婚、离婚登记记录，用于婚育、户籍和住房等事项核验婚姻状况。",
        region_code="330106",
        fields=_fields(
            ("resident_id", "string", "personal", "当事人身份证号"),
            ("name", "string", "personal", "当事人姓名"),
            ("spouse_resident_id", "string", "personal", "配偶身份证号"),
            ("spouse_name", "string", "personal", "配偶姓名"),
            ("registration_type", "string", "personal", "登记类型（结婚/离婚）"),
            ("registered_on", "date", "personal", "登记日期"),
            ("certificate_no", "string", "sensitive", "证书字号"),
            ("registry_office", "string", "internal", "登记机关"),
        ),
        subject=("resident_id", "resident_id"),
        share_type="conditional", open_type="not_open", not_open_reason=PERSONAL_DATA_REASON,
        update_frequency="daily",
        endpoint_url="https://mzj.hangzhou.gov.cn/data-api/marriage",
    ),
    _dataset(
        "zj-enterprise-annual-report", "market",
        name="企业年度报告信息", name_en="Enterprise annual reports",
        description="企业通过国家企业信用信息公示系统报送并公示的年度报告。",
        region_code="330100",
        fields=_fields(
            ("credit_code", "string", "public", "统一社会信用代码"),
            ("entity_name", "string", "public", "企业名称"),
            ("report_year", "integer", "public", "报告年度"),
            ("operating_status", "string", "public", "经营状态"),
            ("employees", "integer", "public", "从业人数"),
            ("website", "string", "public", "网站"),
            ("submitted_on", "date", "public", "报送日期"),
        ),
        subject=("credit_code", "credit_code"),
        share_type="unconditional", open_type="open", update_frequency="yearly",
    ),
    _dataset(
        "zj-health-facilities", "health",
        name="医疗卫生机构信息", name_en="Public health facilities",
        description="医院、社区卫生服务中心等医疗卫生机构的名录与位置，向社会开放。",
        region_code="330100",
        fields=_fields(
            ("facility_code", "string", "public", "机构代码"),
            ("facility_name", "string", "public", "机构名称"),
            ("facility_type", "string", "public", "机构类别"),
            ("grade", "string", "public", "等级（如三级甲等）"),
            ("address", "string", "public", "地址"),
            ("district_code", "string", "public", "所在区县行政区划代码"),
            ("phone", "string", "public", "咨询电话"),
            ("beds", "integer", "public", "核定床位数"),
            ("longitude", "number", "public", "经度（GCJ-02）"),
            ("latitude", "number", "public", "纬度（GCJ-02）"),
        ),
        subject=("other", "facility_code"),
        share_type="unconditional", open_type="open", update_frequency="monthly",
    ),
)  # fmt: skip


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _department_ids(client: httpx.AsyncClient, keys: set[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for org in ORGANISATIONS:
        if org.key not in keys:
            continue
        found = await client.get("/api/identity/v1/organisations", params={"name": org.name})
        matches = [
            o["id"] for o in (await _expect(found, 200)).json()["items"] if o["name"] == org.name
        ]
        if not matches:
            raise RuntimeError(f"department {org.name} is missing: run the identity step first")
        ids[org.key] = matches[0]
    return ids


async def _existing(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    for status in ("published", "draft", "retired"):
        found = await client.get(
            "/api/catalog/v1/datasets", params={"code": code, "status": status}
        )
        items = (await _expect(found, 200)).json()["items"]
        if items:
            existing: dict[str, Any] = items[0]
            return existing
    raise RuntimeError(f"dataset {code} answered 409 but cannot be found")


async def seed_catalog_datasets(client: httpx.AsyncClient, say: Say) -> int:
    """Describe and publish the demo datasets; safe to run again (a code that exists is kept)."""
    owners = await _department_ids(client, {d.owner for d in DATASETS})
    made = 0
    for dataset in DATASETS:
        created = await client.post(
            "/api/catalog/v1/datasets",
            json={**dataset.body, "owner_org_id": owners[dataset.owner]},
        )
        await _expect(created, 201, 409)
        current = (
            created.json() if created.status_code == 201 else await _existing(client, dataset.code)
        )
        if current["status"] == "draft":
            await _expect(
                await client.post(f"/api/catalog/v1/datasets/{current['id']}/publish"), 200
            )
        made += 1
    say(f"    {made} datasets in the data-resource catalogue")
    return made
