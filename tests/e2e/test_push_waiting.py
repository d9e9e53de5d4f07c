"""Waiting for the push in a real browser (Debian's Chromium), through the demo stack: the countdown
(ticking with JavaScript, rendered anew by the refresh without it), "Send again", "Use a code instead" /
"Cancel", and a one-time code typed or pasted with a space in it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from gateway.demo import DemoPorts, RunningDemo, running_demo
from gateway.pages import renderer as pages
from tests.browser import artifact_path
from tests.demo_users import PASSWORDS
from tests.e2e.owa_client import MAILBOX_MARKERS, approve_latest_push

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
SHORT_PUSH_SECONDS = 4.0
COUNTDOWN = re.compile(r"^The request expires in \d+:\d\d\.$")


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningDemo]:
    monkeypatch.setattr(pages, "POLL_INTERVAL_MS", 300)
    monkeypatch.setattr(pages, "NO_SCRIPT_REFRESH_SECONDS", 1)
    async with running_demo(DemoPorts(0, 0, 0, 0)) as running:
        yield running


async def new_page(browser: Browser, *, javascript: bool = True) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(java_script_enabled=javascript)
    context.set_default_timeout(TIMEOUT_MS)
    return context, await context.new_page()


async def at_mfa_page(page: Page, demo: RunningDemo, user: str) -> None:
    await page.goto(f"{demo.gateway_url}/owa/")
    await page.wait_for_url("**/owa/auth/logon.aspx?*")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORDS[user])
    await page.press("#password", "Enter")
    await page.wait_for_url("**/_gateway/mfa")


async def expect_mailbox(page: Page) -> None:
    await page.wait_for_url("**/owa/")
    content = await page.content()
    assert any(marker in content for marker in MAILBOX_MARKERS)


def push_count(demo: RunningDemo) -> int:
    return sum(call["operation"] == "start_push" for call in demo.monosign.state.calls)


async def test_the_countdown_ticks_and_the_expiry_comes_back_to_the_choice(
        demo: RunningDemo, chromium_browser: Browser) -> None:
    demo.monosign.state.push_ttl = SHORT_PUSH_SECONDS
    context, page = await new_page(chromium_browser)
    await at_mfa_page(page, demo, "dave")
    await page.get_by_role("button", name="Send request").click()
    countdown = page.locator(".countdown")
    await expect(countdown).to_have_text(COUNTDOWN)
    first = await countdown.text_content()
    await page.screenshot(path=artifact_path("e2e-push-countdown.png"), full_page=True)
    await expect(countdown).not_to_have_text(first or "")  # it counts down by itself
    # At zero the page says so (briefly: Monosign calls the push expired, and the page moves on by itself).
    await expect(countdown).to_have_attribute("data-expired-text",
                                              "The request has expired. Send it again, or use another way.")
    await expect(page.get_by_text("The request expired before it was approved.")).to_be_visible(timeout=30_000)
    await expect(page.get_by_role("button", name="Send request")).to_be_visible()
    await context.close()


async def test_without_javascript_the_refresh_renders_the_time_left_and_cancel_works(
        demo: RunningDemo, chromium_browser: Browser) -> None:
    context, page = await new_page(chromium_browser, javascript=False)
    await at_mfa_page(page, demo, "dave")
    await page.get_by_role("button", name="Send request").click()
    countdown = page.locator(".countdown")
    await expect(countdown).to_have_text(COUNTDOWN)
    first = await countdown.text_content()
    await expect(countdown).not_to_have_text(first or "")  # the no-script refresh rendered it anew
    await page.get_by_role("button", name="Cancel").click()  # dave has no codes: "Cancel"
    await page.wait_for_url("**/_gateway/mfa")
    await expect(page.get_by_role("button", name="Send request")).to_be_visible()
    await expect(countdown).to_have_count(0)
    await context.close()


async def test_send_again_sends_a_new_push_that_signs_in(demo: RunningDemo, chromium_browser: Browser) -> None:
    context, page = await new_page(chromium_browser)
    await at_mfa_page(page, demo, "alice")
    await page.get_by_role("button", name="Send request").click()
    await expect(page.locator(".countdown")).to_have_text(COUNTDOWN)
    assert push_count(demo) == 1
    await page.get_by_role("button", name="Send again").click()
    await expect(page.locator(".countdown")).to_have_text(COUNTDOWN)
    assert push_count(demo) == 2
    await approve_latest_push(demo.monosign_url, "alice")
    await expect_mailbox(page)
    await context.close()


async def test_use_a_code_instead_lands_on_the_code_field(demo: RunningDemo, chromium_browser: Browser) -> None:
    context, page = await new_page(chromium_browser)
    await at_mfa_page(page, demo, "alice")
    await page.get_by_role("button", name="Send request").click()
    await page.get_by_role("button", name="Use a code instead").click()
    await page.wait_for_url("**/_gateway/mfa#code")
    code_field = page.get_by_role("textbox", name="One-time code")
    await expect(code_field).to_be_focused()
    await expect(page.locator(".countdown")).to_have_count(0)  # no longer waiting
    await expect(page.get_by_role("button", name="Send request")).to_be_visible()
    code, _ = demo.monosign.state.current_code("alice")
    await page.keyboard.type(f"{code[:3]} {code[3:]}")
    await page.get_by_role("button", name="Verify").click()
    await expect_mailbox(page)
    await context.close()


@pytest.mark.parametrize("spaced", ["{0} {1}", " {0} {1} "])
async def test_a_code_pasted_with_a_space_reaches_the_gateway(demo: RunningDemo, chromium_browser: Browser,
                                                               spaced: str) -> None:
    context, page = await new_page(chromium_browser)
    await at_mfa_page(page, demo, "bob")
    code, _ = demo.monosign.state.current_code("bob")
    code_field = page.get_by_role("textbox", name="One-time code")
    await code_field.fill(spaced.format(code[:3], code[3:]))
    assert await code_field.evaluate("field => field.checkValidity()")  # the browser lets it through
    await page.get_by_role("button", name="Verify").click()
    await expect_mailbox(page)
    await context.close()


async def test_the_browser_still_stops_letters(demo: RunningDemo, chromium_browser: Browser) -> None:
    context, page = await new_page(chromium_browser)
    await at_mfa_page(page, demo, "bob")
    code_field = page.get_by_role("textbox", name="One-time code")
    await code_field.fill("12a 456")
    assert not await code_field.evaluate("field => field.checkValidity()")
    await expect(code_field).to_have_attribute("autocomplete", "one-time-code")
    await expect(code_field).to_have_attribute("inputmode", "numeric")
    await context.close()
