"""Browser tests: Playwright driving Debian's Chromium (headless) against `pingtai up` with the
demo province. One platform (shared with tests/e2e) and one browser per module keep it short.

Set PORTAL_TEST_GATEWAY=http://127.0.0.1:<port> to run against a platform already up and seeded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE, DESKTOP = 360, 1280
DEMO_PASSWORD = "Pingtai-Demo-2026"


@pytest.fixture
def gateway(demo_gateway: str) -> str:
    """The platform's public URL: the demo platform (tests/conftest.py), shared with the e2e
    tests, or PORTAL_TEST_GATEWAY's."""
    return demo_gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; its profile folders in a temporary place. Per module:
    Playwright's sync API keeps an event loop in this thread while it runs, which the async
    tests of other modules need for their own."""
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is not at {CHROMIUM}: `make test` installs it (as root)")
    with tempfile.TemporaryDirectory(prefix="pingtai-chromium-") as home:
        env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_CACHE_HOME": f"{home}/cache"}
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env=env
            )
            yield chromium
            chromium.close()


@dataclass
class Browsing:
    """Opens pages in new browser contexts (one per person) at a given width."""

    gateway: str
    browser: Browser
    contexts: list[BrowserContext]

    def page(self, *, width: int = DESKTOP, javascript: bool = True) -> Page:
        context = self.browser.new_context(
            base_url=self.gateway,
            viewport={"width": width, "height": 800},
            java_script_enabled=javascript,
            locale="zh-CN",
        )
        self.contexts.append(context)
        return context.new_page()


@pytest.fixture
def browsing(gateway: str, browser: Browser) -> Iterator[Browsing]:
    """A fresh set of browser contexts for one test, closed after it."""
    made = Browsing(gateway, browser, [])
    yield made
    for context in made.contexts:
        context.close()


def sign_in(page: Page, phone: str, *, next_path: str | None = "/") -> None:
    """Sign in through the portal and identity's form as the demo person with ``phone``
    (``next_path=None``: the page already shows identity's form)."""
    if next_path is not None:
        page.goto(f"/auth/login?next={quote(next_path, safe='')}")
    page.fill("#username", phone)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if "/oauth2/authorize/" in page.url:  # the organisation choice
        page.click("button[type=submit]")
        page.wait_for_load_state()
    assert page.locator("header .account form").count() == 1, page.content()


def assert_accessible(page: Page) -> None:
    """axe-core in the page: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state()
    try:
        results = Axe().run(page)
    except PlaywrightError:  # the page was still being replaced (a redirect): once more
        page.wait_for_load_state("networkidle")
        results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in {"serious", "critical"}]
    assert not bad, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in bad
    )


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under tests/portal/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"]
    path = ARTIFACTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
