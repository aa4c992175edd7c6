"""The demo province's service items (政务服务事项) and one-thing bundles (一件事).

Every item is owned by one of identity's demo departments, many with materials the government
already holds (sourced from the demo datasets by code), and three bundles combine items of
several departments. Loaded through the gateway; safe to run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pingtai.demo.identity import ORGANISATIONS

Say = Callable[[str], None]

# Every form property the demo items ask, defined once so bundles merge them cleanly.
FIELDS: dict[str, dict[str, Any]] = {
    "resident_id": {"type": "string", "title": "公民身份号码", "pattern": "^[0-9]{17}[0-9X]$"},
    "name": {"type": "string", "title": "姓名", "maxLength": 50},
    "phone": {"type": "string", "title": "联系电话", "pattern": "^1[0-9]{10}$"},
    "credit_code": {"type": "string", "title": "统一社会信用代码", "pattern": "^[0-9A-Z]{18}$"},
    "entity_name": {"type": "string", "title": "单位名称", "maxLength": 200},
    "address": {"type": "string", "title": "地址", "maxLength": 200},
    "business_scope": {"type": "string", "title": "经营范围", "maxLength": 2000},
    "registered_capital": {"type": "number", "title": "注册资本（万元）", "minimum": 0},
    "employees": {"type": "integer", "title": "职工人数", "minimum": 0},
    "child_name": {"type": "string", "title": "新生儿姓名", "maxLength": 50},
    "birth_certificate_no": {"type": "string", "title": "出生医学证明编号", "maxLength": 20},
    "spouse_resident_id": {"type": "string", "title": "配偶公民身份号码",
                           "pattern": "^[0-9]{17}[0-9X]$"},
    "property_certificate_no": {"type": "string", "title": "不动产权证书号", "maxLength": 40},
    "bank_account": {"type": "string", "title": "银行账号", "pattern": "^[0-9]{10,30}$"},
    "reason": {"type": "string", "title": "申请事由", "maxLength": 500},
    "retirement_date": {"type": "string", "format": "date", "title": "退休日期"},
}  # fmt: skip

PERSON = ("resident_id", "name", "phone")
ENTERPRISE = ("credit_code", "entity_name", "phone")


@dataclass(frozen=True)
class DemoItem:
    code: str
    owner: str  # a department key of pingtai.demo.identity
    name: str
    kind: str
    applicant: str  # individual | enterprise | both
    max_visits: int
    limits: tuple[int, int]  # legal, promised working days
    # (material key, name, dataset code, applicant field, dataset fields)
    sourced: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = ()
    uploads: tuple[tuple[str, str], ...] = ()
    extra_fields: tuple[str, ...] = ()
    fee_fen: int = 0
    min_acr: int = 2
    legal_basis: str = ""
    region_code: str = "330100"
    other_departments: tuple[str, ...] = field(default=())


def _i(code: str, owner: str, name: str, kind: str, applicant: str, visits: int,
       limits: tuple[int, int], **kw: Any) -> DemoItem:  # fmt: skip
    return DemoItem(code, owner, name, kind, applicant, visits, limits, **kw)


LIC, CONF, PUB, PAY = (
    "administrative_licence",
    "administrative_confirmation",
    "public_service",
    "administrative_payment",
)
POP = (
    "population",
    "户籍信息",
    "zj-population-basic",
    "resident_id",
    ("name", "household_address"),
)
ENT = ("business_licence", "营业执照", "zj-legal-entity", "credit_code",
       ("entity_name", "legal_representative", "registered_address"))  # fmt: skip
SOC = ("social_insurance", "社会保险参保证明", "zj-social-insurance", "resident_id",
       ("insurance_type", "paid_months", "status"))  # fmt: skip
MED = ("medical_insurance", "医保参保信息", "zj-medical-insurance", "resident_id",
       ("insured_type", "status"))  # fmt: skip
BIRTH = ("birth_certificate", "出生医学证明", "zj-birth-certificate", "birth_certificate_no",
         ("child_name", "child_sex", "birth_datetime", "mother_name", "father_name"))  # fmt: skip
TAXREG = ("tax_registration", "税务登记信息", "zj-tax-registration", "credit_code",
          ("taxpayer_name", "taxpayer_type", "status"))  # fmt: skip
MARRY = ("marriage", "婚姻登记信息", "zj-marriage", "resident_id",
         ("spouse_name", "registration_type", "registered_on"))  # fmt: skip
ESTATE = ("real_estate", "不动产登记信息", "zj-real-estate", "resident_id",
          ("certificate_no", "property_address", "area_sqm"))  # fmt: skip
ANNUAL = ("annual_report", "企业年报", "zj-enterprise-annual-report", "credit_code",
          ("report_year", "operating_status", "employees"))  # fmt: skip
ID_PHOTO = ("id_photo", "本人近期免冠照片")
SITE = ("premises_proof", "经营场所证明")

ITEMS: tuple[DemoItem, ...] = (
    # 杭州市市场监督管理局
    _i("zj-market-001", "market", "企业设立登记", LIC, "enterprise", 0, (15, 1),
       extra_fields=("address", "business_scope", "registered_capital"), uploads=(SITE,),
       sourced=(POP,), legal_basis="《中华人民共和国市场主体登记管理条例》第十九条"),
    _i("zj-market-002", "market", "食品经营许可证核发", LIC, "enterprise", 0, (20, 5),
       sourced=(ENT,), uploads=(SITE,), extra_fields=("address",),
       legal_basis="《中华人民共和国食品安全法》第三十五条"),
    _i("zj-market-003", "market", "企业变更登记", LIC, "enterprise", 0, (15, 1),
       sourced=(ENT,), extra_fields=("reason",)),
    _i("zj-market-004", "market", "企业注销登记", LIC, "enterprise", 0, (15, 3),
       sourced=(ENT, TAXREG), extra_fields=("reason",)),
    _i("zj-market-005", "market", "个体工商户设立登记", LIC, "individual", 0, (15, 1),
       sourced=(POP,), extra_fields=("address", "business_scope"), min_acr=2),
    _i("zj-market-006", "market", "企业年度报告公示", PUB, "enterprise", 0, (0, 0),
       sourced=(ENT, ANNUAL), extra_fields=("employees",), min_acr=1),
    _i("zj-market-007", "market", "药品零售企业许可", LIC, "enterprise", 1, (30, 10),
       sourced=(ENT,), uploads=(SITE, ("pharmacist_cert", "执业药师资格证书"))),
    _i("zj-market-008", "market", "特种设备使用登记", LIC, "enterprise", 1, (15, 5),
       sourced=(ENT,), uploads=(("equipment_report", "特种设备监督检验报告"),)),
    # 杭州市公安局
    _i("zj-police-001", "police", "印章刻制备案", CONF, "enterprise", 0, (1, 1),
       sourced=(ENT,), uploads=(("seal_sample", "印模"),)),
    _i("zj-police-002", "police", "新生儿出生登记（入户）", CONF, "individual", 0, (5, 1),
       sourced=(POP, BIRTH), extra_fields=("child_name", "birth_certificate_no")),
    _i("zj-police-003", "police", "居民身份证换领", CONF, "individual", 1, (60, 20),
       sourced=(POP,), uploads=(ID_PHOTO,), fee_fen=2000),
    _i("zj-police-004", "police", "居住证申领", CONF, "individual", 0, (15, 7),
       sourced=(POP, ESTATE), extra_fields=("address",)),
    _i("zj-police-005", "police", "户口迁移（省内）", CONF, "individual", 0, (20, 5),
       sourced=(POP, MARRY, ESTATE), extra_fields=("address", "reason")),
    _i("zj-police-006", "police", "无犯罪记录证明开具", PUB, "individual", 0, (7, 3),
       sourced=(POP,), extra_fields=("reason",)),
    _i("zj-police-007", "police", "机动车驾驶证换证", CONF, "individual", 1, (10, 1),
       sourced=(POP,), uploads=(ID_PHOTO, ("health_cert", "身体条件证明")), fee_fen=1000),
    # 杭州市人力资源和社会保障局
    _i("zj-hrss-001", "hrss", "单位参保登记", CONF, "enterprise", 0, (15, 1),
       sourced=(ENT,), extra_fields=("employees", "bank_account")),
    _i("zj-hrss-002", "hrss", "社会保障卡申领", PUB, "individual", 0, (15, 5),
       sourced=(POP, MED), uploads=(ID_PHOTO,), extra_fields=("address",)),
    _i("zj-hrss-003", "hrss", "职工退休审批", CONF, "individual", 0, (20, 5),
       sourced=(POP, SOC), extra_fields=("retirement_date",)),
    _i("zj-hrss-004", "hrss", "基本养老保险待遇申领", PAY, "individual", 0, (20, 5),
       sourced=(POP, SOC), extra_fields=("bank_account", "retirement_date")),
    _i("zj-hrss-005", "hrss", "失业保险金申领", PAY, "individual", 0, (10, 3),
       sourced=(POP, SOC), extra_fields=("bank_account", "reason")),
    _i("zj-hrss-006", "hrss", "灵活就业人员参保登记", CONF, "individual", 0, (5, 1),
       sourced=(POP,), extra_fields=("address",)),
    _i("zj-hrss-007", "hrss", "职业技能提升补贴申领", PAY, "individual", 0, (20, 10),
       sourced=(POP, SOC), uploads=(("skill_cert", "职业资格证书"),),
       extra_fields=("bank_account",)),
    # 杭州市医疗保障局
    _i("zj-healthcare-001", "healthcare", "新生儿参加城乡居民医保", CONF, "individual", 0, (5, 1),
       sourced=(POP, BIRTH), extra_fields=("child_name", "birth_certificate_no")),
    _i("zj-healthcare-002", "healthcare", "退休人员医保待遇核定", CONF, "individual", 0, (15, 5),
       sourced=(POP, MED, SOC), extra_fields=("retirement_date",)),
    _i("zj-healthcare-003", "healthcare", "异地就医备案", PUB, "individual", 0, (5, 1),
       sourced=(POP, MED), extra_fields=("address", "reason"), min_acr=1),
    _i("zj-healthcare-004", "healthcare", "生育医疗费用报销", PAY, "individual", 0, (20, 10),
       sourced=(POP, MED, BIRTH), extra_fields=("birth_certificate_no", "bank_account")),
    _i("zj-healthcare-005", "healthcare", "门诊慢特病待遇认定", CONF, "individual", 1, (20, 10),
       sourced=(POP, MED), uploads=(("diagnosis", "诊断证明"),)),
    _i("zj-healthcare-006", "healthcare", "单位医保参保登记", CONF, "enterprise", 0, (5, 1),
       sourced=(ENT,), extra_fields=("employees",)),
    # 国家税务总局杭州市税务局
    _i("zj-tax-001", "tax", "新办纳税人涉税事项（税务登记信息确认）", CONF, "enterprise", 0, (1, 1),
       sourced=(ENT,), extra_fields=("bank_account",)),
    _i("zj-tax-002", "tax", "发票申领", PUB, "enterprise", 0, (1, 1),
       sourced=(ENT, TAXREG)),
    _i("zj-tax-003", "tax", "个人所得税综合所得汇算清缴", PUB, "individual", 0, (0, 0),
       sourced=(POP,), extra_fields=("bank_account",), min_acr=2),
    _i("zj-tax-004", "tax", "增值税一般纳税人登记", CONF, "enterprise", 0, (5, 1),
       sourced=(ENT, TAXREG)),
    _i("zj-tax-005", "tax", "个体工商户定期定额核定", CONF, "individual", 1, (20, 10),
       sourced=(POP,), extra_fields=("address", "business_scope")),
    # 杭州市卫生健康委员会
    _i("zj-health-001", "health", "出生医学证明办理", CONF, "individual", 1, (10, 3),
       sourced=(POP,), extra_fields=("child_name",), uploads=(("birth_record", "分娩记录"),)),
    _i("zj-health-002", "health", "医疗机构执业登记", LIC, "enterprise", 1, (45, 20),
       sourced=(ENT,), uploads=(SITE, ("equipment_list", "医疗设备清单"))),
    _i("zj-health-003", "health", "医师执业注册", LIC, "individual", 0, (20, 5),
       sourced=(POP,), uploads=(("physician_cert", "医师资格证书"), ID_PHOTO)),
    _i("zj-health-004", "health", "公共场所卫生许可", LIC, "enterprise", 0, (20, 5),
       sourced=(ENT,), uploads=(SITE,), extra_fields=("address",)),
    _i("zj-health-005", "health", "预防接种证办理", PUB, "individual", 0, (5, 1),
       sourced=(POP, BIRTH), extra_fields=("child_name", "birth_certificate_no"), min_acr=1),
    # 杭州市西湖区民政局
    _i("zj-civil-001", "civil", "结婚登记", CONF, "individual", 1, (1, 1),
       sourced=(POP,), extra_fields=("spouse_resident_id",), uploads=(ID_PHOTO,),
       region_code="330106"),
    _i("zj-civil-002", "civil", "最低生活保障申请", PAY, "individual", 0, (30, 15),
       sourced=(POP, ESTATE, SOC), extra_fields=("address", "bank_account", "reason"),
       region_code="330106"),
    _i("zj-civil-003", "civil", "高龄津贴申领", PAY, "individual", 0, (20, 5),
       sourced=(POP,), extra_fields=("bank_account",), region_code="330106", min_acr=1),
    _i("zj-civil-004", "civil", "社会团体成立登记", LIC, "enterprise", 1, (60, 30),
       uploads=(("charter", "章程"), SITE), extra_fields=("address", "reason"),
       region_code="330106"),
    _i("zj-civil-005", "civil", "残疾人两项补贴申领", PAY, "individual", 0, (20, 10),
       sourced=(POP,), uploads=(("disability_cert", "残疾人证"),),
       extra_fields=("bank_account",), region_code="330106"),
    # 浙江省大数据发展管理局
    _i("zj-data-001", "data", "公共数据开放申请", PUB, "both", 0, (10, 5),
       extra_fields=("reason",), region_code="330000", min_acr=1),
    _i("zj-data-002", "data", "公共数据共享申请（部门间）", PUB, "enterprise", 0, (10, 5),
       sourced=(ENT,), extra_fields=("reason",), region_code="330000"),
)  # fmt: skip

BUNDLES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("zj-bundle-open-business", "开办企业一件事",
     "营业执照、印章刻制、税务登记（发票）和社保参保登记，一次申请、一日办结。",
     ("zj-market-001", "zj-police-001", "zj-tax-001", "zj-hrss-001")),
    ("zj-bundle-birth", "出生一件事",
     "出生医学证明、户口登记、医保参保和社会保障卡申领，一表申请、并联办理。",
     ("zj-health-001", "zj-police-002", "zj-healthcare-001", "zj-hrss-002")),
    ("zj-bundle-retirement", "退休一件事",
     "退休审批、养老金待遇申领和退休人员医保待遇核定，一次办好。",
     ("zj-hrss-003", "zj-hrss-004", "zj-healthcare-002")),
)  # fmt: skip


def _template(item: DemoItem, owners: dict[str, str]) -> dict[str, Any]:
    states = [
        {"key": "submitted", "name": "已提交"},
        {"key": "accepted", "name": "已受理"},
        {"key": "supplementing", "name": "补正中"},
        {"key": "approved", "name": "已办结", "end": True},
        {"key": "rejected", "name": "不予许可", "end": True},
    ]
    review_days = max(1, item.limits[1] - 1) if item.limits[1] else 1
    return {
        "start": "submitted",
        "states": states,
        "actions": [
            {"key": "accept", "name": "受理", "from_states": ["submitted"],
             "to_states": ["accepted"], "role": "officer", "sla_days": 1},
            {"key": "request_supplement", "name": "一次性告知补正", "from_states": ["accepted"],
             "to_states": ["supplementing"], "role": "officer", "sla_days": 1,
             "supplement": True},
            {"key": "resubmit", "name": "补正后重新受理", "from_states": ["supplementing"],
             "to_states": ["accepted"], "role": "officer", "sla_days": 5},
            {"key": "approve", "name": "审核办结", "from_states": ["accepted"],
             "to_states": ["approved"], "role": "dept_admin", "sla_days": review_days},
            {"key": "reject", "name": "不予许可", "from_states": ["accepted"],
             "to_states": ["rejected"], "role": "dept_admin", "sla_days": review_days},
        ],
    }  # fmt: skip


def _body(item: DemoItem, owners: dict[str, str], datasets: dict[str, str]) -> dict[str, Any]:
    base = ENTERPRISE if item.applicant == "enterprise" else PERSON
    names = list(dict.fromkeys([*base, *item.extra_fields]))
    for _, _, _, applicant_field, _ in item.sourced:
        if applicant_field not in names:
            names.append(applicant_field)
    form = {
        "type": "object",
        "properties": {n: FIELDS[n] for n in names},
        "required": [n for n in names if n in base],
    }
    materials: list[dict[str, Any]] = [
        {"key": key, "name": name, "source": "dataset",
         "dataset": {"dataset_id": datasets[code], "applicant_field": applicant_field,
                     "fields": list(fields)}}
        for key, name, code, applicant_field, fields in item.sourced
    ]  # fmt: skip
    materials += [
        {"key": key, "name": name, "source": "upload",
         "upload": {"content_types": ["image/jpeg", "image/png", "application/pdf"],
                    "max_bytes": 10 * 1024 * 1024}}
        for key, name in item.uploads
    ]  # fmt: skip
    applicant_types = ["individual", "enterprise"] if item.applicant == "both" else [item.applicant]
    legal, promised = item.limits
    return {
        "code": item.code,
        "owner_org_id": owners[item.owner],
        "name": item.name,
        "description": f"{item.name}：申请人在线提交，"
        + ("全程网办、零跑腿。" if item.max_visits == 0 else "最多跑一次。"),
        "kind": item.kind,
        "applicant_types": applicant_types,
        "min_assurance_level": item.min_acr,
        "legal_time_limit_days": legal,
        "promised_time_limit_days": promised,
        "max_visits": item.max_visits,
        "fee": {"amount_fen": item.fee_fen, "description": "工本费" if item.fee_fen else "不收费"},
        "legal_basis": item.legal_basis or "《浙江省保障“最多跑一次”改革规定》",
        "region_code": item.region_code,
        "form": form,
        "materials": materials,
        "template": _template(item, owners),
    }


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _department_ids(client: httpx.AsyncClient) -> dict[str, str]:
    ids: dict[str, str] = {}
    for org in ORGANISATIONS:
        if org.kind != "department":
            continue
        found = await client.get("/api/identity/v1/organisations", params={"name": org.name})
        matches = [
            o["id"] for o in (await _expect(found, 200)).json()["items"] if o["name"] == org.name
        ]
        if not matches:
            raise RuntimeError(f"department {org.name} is missing: run the identity step first")
        ids[org.key] = matches[0]
    return ids


async def _dataset_ids(client: httpx.AsyncClient) -> dict[str, str]:
    codes = {code for item in ITEMS for _, _, code, _, _ in item.sourced}
    ids: dict[str, str] = {}
    for code in sorted(codes):
        found = await client.get("/api/catalog/v1/datasets", params={"code": code})
        items = (await _expect(found, 200)).json()["items"]
        if not items:
            raise RuntimeError(f"dataset {code} is missing: run the datasets step first")
        ids[code] = items[0]["id"]
    return ids


async def _find_draft(client: httpx.AsyncClient, path: str, code: str) -> str | None:
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await _expect(await client.get(path, params=params), 200)).json()
        for entry in page["items"]:
            if entry["code"] == code:
                found: str = entry["id"]
                return found
        cursor = page["next_cursor"]
        if cursor is None:
            return None


async def _published_id(client: httpx.AsyncClient, kind: str, code: str) -> str | None:
    found = await client.get(f"/api/catalog/v1/{kind}", params={"code": code})
    items = (await _expect(found, 200)).json()["items"]
    return str(items[0]["id"]) if items else None


async def _ensure(client: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> str:
    """Create and publish ``body`` unless an entry with its code is published already."""
    code = body["code"]
    existing = await _published_id(client, kind, code)
    if existing is not None:
        return existing
    created = await _expect(await client.post(f"/api/catalog/v1/{kind}", json=body), 201, 409)
    if created.status_code == 201:
        entry_id: str = created.json()["id"]
    else:
        drafts = "/api/catalog/v1/item-drafts" if kind == "items" else None
        found = await _find_draft(client, drafts, code) if drafts else None
        if found is None:
            raise RuntimeError(f"{kind} {code} answered 409 but is neither published nor a draft")
        entry_id = found
    await _expect(await client.post(f"/api/catalog/v1/{kind}/{entry_id}/publish"), 201)
    return entry_id


async def seed_catalog_items(client: httpx.AsyncClient, say: Say) -> int:
    """Describe and publish the demo service items and bundles; safe to run again."""
    owners = await _department_ids(client)
    datasets = await _dataset_ids(client)
    ids: dict[str, str] = {}
    for item in ITEMS:
        ids[item.code] = await _ensure(client, "items", _body(item, owners, datasets))
    say(f"    {len(ids)} service items")
    for code, name, description, item_codes in BUNDLES:
        body = {
            "code": code,
            "name": name,
            "description": description,
            "item_ids": [ids[c] for c in item_codes],
        }
        await _ensure(client, "bundles", body)
    say(f"    {len(BUNDLES)} one-thing bundles")
    return len(ids) + len(BUNDLES)
