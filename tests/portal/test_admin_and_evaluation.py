"""A department admin drafts, validates and publishes an item; a platform admin's page; every
page passes axe and loads at most 300 KB on first load."""

from __future__ import annotations

import json
import re
import secrets

from playwright.sync_api import Page, expect

from tests.portal.conftest import PHONE, Browsing, assert_accessible, screenshot, sign_in

MARKET_ADMIN = "13800000012"  # 孙丽
PLATFORM_ADMIN = "13800000041"  # 许诺
ASSET_BUDGET = 300 * 1024


def test_a_department_admin_validates_and_publishes_an_item(browsing: Browsing) -> None:
    page = browsing.page()
    sign_in(page, MARKET_ADMIN, next_path="/admin/items")
    assert_accessible(page)
    page.get_by_role("link", name="新建事项").click()
    definition = json.loads(page.locator("#definition").input_value())
    code = f"zj-market-t{secrets.token_hex(3)}"
    definition.update(code=code, name=f"测试事项 {code}", legal_time_limit_days=1)
    # Broken on purpose: the promised limit exceeds the legal one; the catalog names the field.
    page.fill("#definition", json.dumps(definition, ensure_ascii=False))
    page.get_by_role("button", name="保存并校验草稿").click()
    expect(page.locator(".problem")).to_contain_text("promised_time_limit_days")
    assert_accessible(page)
    definition["legal_time_limit_days"] = 10
    page.fill("#definition", json.dumps(definition, ensure_ascii=False))
    page.get_by_role("button", name="保存并校验草稿").click()
    expect(page.locator(".notice")).to_have_text("已保存：目录校验通过。")
    expect(page.locator("#item-status")).to_contain_text("draft")
    page.get_by_role("button", name="发布").click()
    expect(page.locator(".notice")).to_have_text("已发布为第 1 版。")
    screenshot(page, "admin-item")
    # The public finds it.
    visitor = browsing.page()
    visitor.goto(f"/services?q={code}")
    expect(visitor.locator(".results h2 a")).to_have_text(f"测试事项 {code}")


def _first_load_bytes(page: Page, path: str) -> int:
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body()) if r.ok and r.status != 303 else 0))
    page.goto(path)
    page.wait_for_load_state("networkidle")
    return sum(sizes)


def test_pages_are_accessible_light_and_localised(browsing: Browsing) -> None:
    page = browsing.page()
    sign_in(page, PLATFORM_ADMIN, next_path="/admin/platform")
    expect(page.locator("h1")).to_have_text("平台管理")
    assert_accessible(page)
    for path in ("/", "/services", "/services?kind=bundles", "/admin/platform", "/evaluation",
                 "/admin/items", "/admin/bundles", "/admin/datasets", "/admin/grants",
                 "/admin/cases", "/admin/platform/weights", "/admin/platform/plans",
                 "/admin/platform/organisations", "/nonesuch"):  # fmt: skip
        fresh = browsing.page(width=PHONE)
        fresh.context.add_cookies(page.context.cookies())
        loaded = _first_load_bytes(fresh, path)
        assert loaded <= ASSET_BUDGET, f"{path}: {loaded} bytes on first load"
        assert_accessible(fresh)
    # English through the switch, kept by a cookie.
    page.goto("/services")
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Services")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)
    page.get_by_role("link", name="简体中文").click()
    expect(page.locator("h1")).to_have_text("办事服务")
    # A strict CSP: no inline script or style anywhere.
    response = page.request.get("/services")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert re.search(r"frame-ancestors 'none'", policy)
