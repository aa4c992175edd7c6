"""The core flow in the browser ("apply once"): an enterprise agent applies for the "open a
business" bundle, sees the business licence fetched, uploads the rest, follows the application
live while officers of four departments accept and their admins approve in their inboxes,
receives the result, reviews it and sees the access in "who used my data". A department admin
approves a data-grant request on the way; an evaluator sees the ranking change, drills down and
exports the figures."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from pingtai.demo.identity import ORGANISATIONS, PEOPLE
from pingtai.demo.workflow import sign_in as api_sign_in
from tests.portal.conftest import PHONE, Browsing, assert_accessible, screenshot, sign_in

AGENT = "13800000031"  # 沈洁, enterprise agent of 杭州云栖科技
CIVIL_ADMIN = "13800000019"  # 卫东, officer and department admin of the civil affairs bureau
# (officer, department admin) per department of the bundle; the test makes the tax and hrss
# officers department admins too (the demo has no admin there).
DEPARTMENTS = {
    "market": ("13800000011", "13800000012"),
    "police": ("13800000013", "13800000014"),
    "tax": ("13800000017", "13800000017"),
    "hrss": ("13800000015", "13800000015"),
}
BUNDLE = "zj-bundle-open-business"
EVALUATOR = "13800000043"  # 吕方
MARKET = "杭州市市场监督管理局"
PDF = b"%PDF-1.4\n% portal test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _admin(gateway: str) -> httpx.Client:
    client = httpx.Client(base_url=gateway, timeout=30)
    token = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"},
        auth=("platform-admin", "pingtai-dev-admin-secret"),
    ).json()["access_token"]  # fmt: skip
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _org_id(client: httpx.Client, key: str) -> str:
    name = next(o.name for o in ORGANISATIONS if o.key == key)
    found = client.get("/api/identity/v1/organisations", params={"name": name}).json()["items"]
    return str(next(o["id"] for o in found if o["name"] == name))


def _dataset(client: httpx.Client, code: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/api/catalog/v1/datasets", params={"code": code}).json()[
        "items"
    ][0]
    return found


@pytest.fixture
def prepared(gateway: str) -> dict[str, str]:
    """The data bureau (workflow's organisation) asks
    for the business register (granted at once: unconditional) and for marriage records
    (conditional: the civil affairs bureau must answer)."""
    admin = _admin(gateway)
    try:
        data_admin = next(p for p in PEOPLE if p.phone == "13800000020")
        data_org = _org_id(admin, "data")
        # Playwright's sync API runs an event loop in this thread: sign in from another one.
        with ThreadPoolExecutor(1) as pool:
            token = pool.submit(asyncio.run, api_sign_in(gateway, data_admin, data_org)).result()
        until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
        bearer = {"Authorization": f"Bearer {token}"}
        licence = _dataset(admin, "zj-legal-entity")
        bundle = admin.get("/api/catalog/v1/bundles", params={"code": BUNDLE}).json()["items"][0]
        merged = admin.get(f"/api/catalog/v1/bundles/{bundle['id']}").json()["materials"]
        sourced = [m["dataset"] for m in merged if m.get("dataset")]
        fields = sorted(
            {f for d in sourced if d["dataset_id"] == licence["id"] for f in d["fields"]}
        )
        _ask(admin, bearer, {"dataset_id": licence["id"], "fields": fields, "valid_until": until,
                             "purpose": "一件事办件：营业执照信息共享核验"})  # fmt: skip
        marriage = _dataset(admin, "zj-marriage")
        pending = _ask(admin, bearer, {
            "dataset_id": marriage["id"], "fields": [marriage["fields"][0]["name"]],
            "valid_until": until, "purpose": "婚姻登记信息核验"})  # fmt: skip
        assert pending["status"] == "pending", pending
        return {"grant": pending["id"]}
    finally:
        admin.close()


def _ranking(page: Page) -> dict[str, tuple[int, str]]:
    """Name -> (rank, composite) as the evaluation page shows them (fresh)."""
    page.goto("/evaluation")
    rows = page.locator("#ranking tbody tr").all()
    cells = [[c.inner_text() for c in row.locator("td").all()] for row in rows]
    return {name: (int(rank), value) for rank, name, value in cells}


def _ask(admin: httpx.Client, bearer: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    """Ask for a grant; one left by an earlier run is revoked first, so each run asks anew."""
    asked = admin.post("/api/exchange/v1/grants", headers=bearer, json=request)
    if asked.status_code == 409:
        earlier = asked.json()["grant_id"]
        admin.post(f"/api/exchange/v1/grants/{earlier}/revoke", json={"reason": "测试重跑"})
        asked = admin.post("/api/exchange/v1/grants", headers=bearer, json=request)
    assert asked.status_code == 201, asked.text
    grant: dict[str, Any] = asked.json()
    return grant


def _decide(page: Page, decision: str, comment: str) -> None:
    page.get_by_role("radio", name=re.compile(decision)).check()
    page.fill("#comment", comment)
    page.get_by_role("button", name="提交办理决定").click()
    expect(page.locator(".notice")).to_be_visible()


def test_apply_once_for_a_business_with_four_departments(
    browsing: Browsing, prepared: dict[str, str]
) -> None:
    # A department admin answers a data-grant request on their dataset.
    civil = browsing.page()
    sign_in(civil, CIVIL_ADMIN, next_path="/admin/grants")
    row = civil.locator("tr", has=civil.locator(f"form[action$='{prepared['grant']}/approve']"))
    assert_accessible(civil)
    row.get_by_role("button", name="批准").click()
    expect(civil.locator(".notice, table")).not_to_have_count(0)
    expect(civil.locator(f"form[action$='{prepared['grant']}/approve']")).to_have_count(0)

    # The evaluator's ranking before.
    evaluator = browsing.page()
    sign_in(evaluator, EVALUATOR, next_path="/evaluation")
    before = _ranking(evaluator)

    # The agent applies once, for four departments.
    agent = browsing.page(width=PHONE)
    sign_in(agent, AGENT, next_path="/services?kind=bundles")
    agent.get_by_role("link", name="开办企业一件事").click()
    agent.get_by_role("link", name="在线办理").click()
    assert_accessible(agent)
    agent.fill("#f-phone", "12345")  # not a mobile number: workflow names the field
    agent.get_by_role("button", name="提交申请").click()
    expect(agent.locator("#e-phone")).to_be_visible()
    expect(agent.locator("#problem")).to_be_visible()
    assert_accessible(agent)
    screenshot(agent, "apply-errors")
    agent.fill("#f-phone", "13800000031")
    yunqi = next(o for o in ORGANISATIONS if o.key == "yunqi")
    agent.fill("#f-credit_code", yunqi.credit_code)
    agent.fill("#f-entity_name", yunqi.name)
    agent.fill("#f-resident_id", next(p for p in PEOPLE if p.phone == AGENT).resident_id)
    agent.get_by_role("button", name="提交申请").click()
    expect(agent).to_have_url(re.compile(r"/me/applications/[0-9a-f]{32}$"))
    application_id = agent.url.rsplit("/", 1)[1]

    # The business licence is fetched from the register; the rest is asked for.
    licence = agent.locator(".materials li", has_text="营业执照")
    # (When exchange cannot answer at once, workflow fetches again in the background every 10 s
    # and the page follows live.)
    expect(licence).to_contain_text("已由政府部门共享获取", timeout=30_000)
    expect(licence).to_contain_text("账本第")
    while agent.locator(".materials form.upload").count():
        form = agent.locator(".materials form.upload").first
        form.locator("input[type=file]").set_input_files(
            {"name": "material.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        form.get_by_role("button", name="上传").click()
        agent.wait_for_load_state()
    expect(agent.locator("#application-status")).to_have_text("办理中")
    assert_accessible(agent)
    screenshot(agent, "application")

    # Officers accept and admins approve, each in their own browser; the agent's page is left
    # open and follows live.
    for officer_phone, admin_phone in DEPARTMENTS.values():
        for phone, decision in ((officer_phone, "accept"), (admin_phone, "approve")):
            desk = browsing.page()
            sign_in(desk, phone, next_path="/work/inbox")
            link = desk.locator("table.inbox a[href^='/work/tasks/']").filter(
                has_text="开办企业一件事"
            )
            task_links = [a.get_attribute("href") for a in link.all()]
            assert task_links, desk.content()
            done = False
            for href in task_links:
                desk.goto(str(href))
                if desk.locator(f"input[name=decision][value={decision}]").count() and (
                    application_id in desk.locator(".facts").first.inner_text()
                ):
                    _decide(desk, decision, "材料齐全，同意" if decision == "approve" else "受理")
                    done = True
                    break
            assert done, f"no {decision} task for {phone}"
            desk.context.close()
            browsing.contexts.remove(desk.context)

    expect(agent.locator("#application-status")).to_have_text("已办结", timeout=20_000)
    expect(agent.locator("#result-h")).to_be_visible()
    expect(agent.locator("section", has=agent.locator("#result-h"))).to_contain_text("电子证照")

    # The review, then who used the enterprise's data.
    agent.get_by_role("button", name="提交评价").click()
    expect(agent.locator(".notice")).to_have_text("感谢您的评价。")
    agent.goto("/me/data?whose=organisation")
    entry = agent.locator("table.accesses tr", has_text="法人基础信息").filter(
        has=agent.locator(f"a[href='/me/applications/{application_id}']")
    )
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("已读取")
    assert_accessible(agent)
    screenshot(agent, "who-used-my-data")

    # The evaluation service counts the finished application and the review: the ranking moves.
    deadline = time.monotonic() + 30
    while (after := _ranking(evaluator)) == before and time.monotonic() < deadline:
        time.sleep(1)
    assert after != before and MARKET in after, (before, after)
    ranks = [rank for rank, _ in after.values()]
    assert sorted(ranks)[0] == 1
    expect(evaluator.locator("svg.chart rect.chart-bar").first).to_be_attached()
    assert_accessible(evaluator)
    screenshot(evaluator, "evaluation")
    evaluator.get_by_role("link", name=MARKET).click()
    expect(evaluator.locator("h1")).to_have_text(MARKET)
    expect(evaluator.locator("svg.chart")).to_be_attached()
    assert_accessible(evaluator)
    screenshot(evaluator, "evaluation-department")
    evaluator.goto("/evaluation")
    with evaluator.expect_download() as download:
        evaluator.get_by_role("link", name="下载逐日数据（CSV）").click()
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    assert len(lines) > 1 and lines[0].count(",") >= 3
