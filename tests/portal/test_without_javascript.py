"""Every main task works with JavaScript off (axe needs JavaScript: the same pages are checked
with it on in the other tests): find a service, sign in, apply, upload, follow by refreshing, an
officer accepts, the department admin approves, the applicant reviews; and the one supplement."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from pingtai.demo.identity import PEOPLE
from tests.portal.conftest import PHONE, Browsing, screenshot, sign_in

CITIZEN = "13800000001"  # 张伟, verified in person
POLICE_OFFICER = "13800000013"  # 周强
POLICE_ADMIN = "13800000014"  # 吴敏
PDF = b"%PDF-1.4\n% no script\n%%EOF\n"


def _apply(browsing: Browsing) -> tuple[Page, str]:
    citizen = browsing.page(width=PHONE, javascript=False)
    citizen.goto("/services")
    citizen.fill("#q", "无犯罪记录")
    citizen.get_by_role("button", name="搜索").click()
    citizen.get_by_role("link", name="无犯罪记录证明开具").click()
    expect(citizen.locator("h1")).to_have_text("无犯罪记录证明开具")
    citizen.get_by_role("link", name="在线办理").click()  # signed out: identity's form first
    sign_in(citizen, CITIZEN, next_path=None)
    expect(citizen.locator("h1")).to_contain_text("无犯罪记录证明开具")
    person = next(p for p in PEOPLE if p.phone == CITIZEN)
    citizen.fill("#f-resident_id", person.resident_id)
    citizen.fill("#f-name", person.name)
    citizen.fill("#f-phone", person.phone)
    citizen.get_by_role("button", name="提交申请").click()
    expect(citizen).to_have_url(re.compile(r"/me/applications/[0-9a-f]{32}$"))
    for form in citizen.locator(".materials form.upload").all():
        form.locator("input[type=file]").set_input_files(
            {"name": "id.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        form.get_by_role("button", name="上传").click()
    expect(citizen.locator("#application-status")).to_have_text("办理中")
    return citizen, citizen.url.rsplit("/", 1)[1]


def _open_task(desk: Page, application_id: str, decision: str) -> bool:
    """Open the inbox task of ``application_id`` offering ``decision``; False if there is none."""
    desk.goto("/work/inbox")
    for href in [a.get_attribute("href") for a in desk.locator("table.inbox a").all()]:
        desk.goto(str(href))
        if (
            application_id in desk.locator(".facts").first.inner_text()
            and desk.locator(f"input[name=decision][value={decision}]").count()
        ):
            return True
    return False


def _decide(desk: Page, decision: str, comment: str) -> None:
    desk.locator(f"input[name=decision][value={decision}]").check()
    desk.fill("#comment", comment)
    desk.get_by_role("button", name="提交办理决定").click()
    expect(desk.locator(".notice")).to_be_visible()


def test_apply_follow_and_review_without_javascript(browsing: Browsing) -> None:
    citizen, application_id = _apply(browsing)
    for phone, decision, comment in (
        (POLICE_OFFICER, "accept", "受理"), (POLICE_ADMIN, "approve", "准予办理")
    ):  # fmt: skip
        desk = browsing.page(javascript=False)
        sign_in(desk, phone, next_path="/work/inbox")
        if decision == "accept":
            screenshot(desk, "inbox")
        assert _open_task(desk, application_id, decision), desk.content()
        if decision == "accept":
            screenshot(desk, "task")
        _decide(desk, decision, comment)

    citizen.reload()  # without JavaScript, a refresh shows what the live page shows
    expect(citizen.locator("#application-status")).to_have_text("已办结")
    expect(citizen.locator("#history")).to_contain_text("准予办理")
    citizen.get_by_role("button", name="提交评价").click()
    expect(citizen.locator(".notice")).to_have_text("感谢您的评价。")


def test_answer_the_supplement_without_javascript(browsing: Browsing) -> None:
    citizen, application_id = _apply(browsing)
    desk = browsing.page(javascript=False)
    sign_in(desk, POLICE_OFFICER, next_path="/work/inbox")
    assert _open_task(desk, application_id, "accept")
    _decide(desk, "accept", "受理")
    assert _open_task(desk, application_id, "request_supplement")
    _decide(desk, "request_supplement", "请补充现居住地址")
    citizen.reload()
    expect(citizen.locator("#application-status")).to_have_text("待补正")
    expect(citizen.locator("section.action")).to_contain_text("请补充现居住地址")
    citizen.fill("#s-comment", "已补充地址")
    citizen.get_by_role("button", name="提交补正").click()
    expect(citizen.locator("#application-status")).to_have_text("办理中")
    expect(citizen.locator("#history")).to_contain_text("已补正")
