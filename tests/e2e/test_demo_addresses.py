"""The demo's address as people type it, in a real browser (Debian's Chromium): `localhost` reaches
the demo (redirected to the origin it printed), and a host the gateway does not serve gets the
branded "wrong address" page, styled, with a link that works."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from gateway.demo import DemoPorts, RunningDemo, running_demo
from tests.browser import artifact_path
from tests.demo_users import PASSWORDS
from tests.e2e.owa_client import MAILBOX_MARKERS

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
async def demo() -> AsyncIterator[RunningDemo]:
    async with running_demo(DemoPorts(0, 0, 0, 0)) as running:
        yield running


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


async def test_localhost_reaches_the_demo_and_signs_in(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"http://localhost:{port_of(demo.gateway_url)}/owa/")
    await page.wait_for_url(f"{demo.gateway_url}/owa/auth/logon.aspx?replaceCurrent=1*")
    await page.fill("#username", "bob")
    await page.fill("#password", PASSWORDS["bob"])
    await page.click("#signInButton")
    await page.wait_for_url("**/_gateway/mfa")
    code, _ = demo.monosign.state.current_code("bob")
    await page.get_by_role("textbox", name="One-time code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(f"{demo.gateway_url}/owa/")
    content = await page.content()
    assert any(marker in content for marker in MAILBOX_MARKERS)
    await context.close()


async def test_a_wrong_host_gets_the_branded_page_naming_the_right_one(demo: RunningDemo,
                                                                       chromium_browser: Browser) -> None:
    # Chromium resolves this name to 127.0.0.1 itself: a host name the gateway does not serve.
    context = await chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    response = await page.goto(f"http://wrong.localhost:{port_of(demo.gateway_url)}/owa/")
    assert response is not None
    assert response.status == 421  # the demo serves its sites from a configuration file: no site lists it
    await expect(page.get_by_role("heading", name="Wrong address")).to_be_visible()
    await expect(page.get_by_text(f"Use {demo.gateway_url}/ instead.")).to_be_visible()
    # Styled: the style sheets loaded from the wrong host too (the card has the stylesheet's width).
    assert await page.evaluate("getComputedStyle(document.querySelector('main.card')).maxWidth") != "none"
    await page.screenshot(path=artifact_path("e2e-wrong-host.png"), full_page=True)
    await page.get_by_role("link", name="Go to the right address").click()
    await page.wait_for_url(f"{demo.gateway_url}/owa/auth/logon.aspx*")
    await context.close()


async def test_the_intranet_site_opens_in_a_browser(demo: RunningDemo, chromium_browser: Browser) -> None:
    # The demo's second site, on the same listener: Chromium resolves *.localhost to 127.0.0.1 itself.
    assert demo.app_url
    context = await chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    response = await page.goto(f"{demo.app_url}/")
    assert response is not None
    assert response.status == 200
    # Behind the gateway's own sign-in (tests/e2e/test_portal_demo.py signs in).
    assert page.url.startswith(f"{demo.app_url}/_gateway/signin?rd=")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    response = await page.goto(f"{demo.app_url}/health")
    assert response is not None
    assert response.status == 200
    response = await page.goto(f"{demo.app_url}/admin/")
    assert response is not None
    assert response.status == 403
    await context.close()
