"""The portal in a real browser: the citizen's, officer's, department admin's and evaluator's
main tasks, accessibility on every page, phones and desktops, JavaScript on and off."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.portal.conftest import (
    DESKTOP,
    PHONE,
    Browsing,
    assert_accessible,
    screenshot,
    sign_in,
)

CITIZEN = "13800000001"  # 张伟


def test_anyone_browses_searches_and_reads_an_item(browsing: Browsing) -> None:
    for width in (PHONE, DESKTOP):
        page = browsing.page(width=width)
        page.goto("/")
        expect(page.locator("h1")).to_have_text("政务服务 一次申请 网上办理")
        assert_accessible(page)
        screenshot(page, "home")

        page.goto("/services?q=企业")
        expect(page.locator(".results h2 a").first).to_contain_text("企业")
        assert_accessible(page)
        screenshot(page, "catalogue")

        page.goto("/services?kind=bundles")
        page.get_by_role("link", name="开办企业一件事").click()
        expect(page.locator("h1")).to_have_text("开办企业一件事")
        expect(page.locator("td .tag.fetched").first).to_be_visible()
        assert_accessible(page)
        screenshot(page, "bundle")


def test_a_citizen_signs_in_and_out_everywhere(browsing: Browsing) -> None:
    page = browsing.page()
    sign_in(page, CITIZEN, next_path="/me/applications")
    expect(page).to_have_url(re.compile(r"/me/applications$"))
    expect(page.locator("header .account")).to_contain_text("张伟")
    assert_accessible(page)
    other = browsing.page()
    sign_in(other, CITIZEN)
    cookies = [c for c in other.context.cookies() if c["name"] == "pingtai_portal_session"]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax"

    page.get_by_role("button", name="全部退出").click()
    # Through identity's end-session endpoint and back.
    expect(page).to_have_url(re.compile(r"/\?signed_out=1$"))
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("header .account a")).to_have_text("登录")
    # The other browser's portal session is gone too, and so is its session at identity: it
    # meets the password form again (RP-initiated logout ended every identity session).
    other.goto("/me/applications")
    expect(other.locator("#username")).to_be_visible()
    # A fresh browser with the old portal cookie opens nothing either.
    replay = browsing.page()
    replay.context.add_cookies(cookies)
    replay.goto("/me/applications")
    expect(replay.locator("#username")).to_be_visible()
    # And this browser, signed out, is asked for the password again.
    page.goto("/auth/login?next=/me/applications")
    expect(page.locator("#username")).to_be_visible()
