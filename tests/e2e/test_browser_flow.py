"""The whole sign-in in a real browser (Debian's Chromium), through the gateway, against both simulators.

Exchange's logon page → password → the gateway's MFA page → code or push → the mailbox; the error
pages a user can meet on the way; Turkish; a phone. Every test runs the demo stack in-process
(`gateway.demo.running_demo`, real listeners on 127.0.0.1) and keeps screenshots in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from gateway.demo import DemoPorts, RunningDemo, running_demo
from gateway.pages import renderer as pages
from gateway.sim.monosign_state import FaultMode
from tests.browser import artifact_path
from tests.demo_users import PASSWORDS
from tests.e2e.owa_client import MAILBOX_MARKERS, approve_latest_push

pytestmark = pytest.mark.browser

MAX_FAILURES = 3
TIMEOUT_MS = 15_000


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningDemo]:
    # Faster than production so the waits stay short; the behaviour is the same.
    monkeypatch.setattr(pages, "POLL_INTERVAL_MS", 300)
    monkeypatch.setattr(pages, "NO_SCRIPT_REFRESH_SECONDS", 1)
    async with running_demo(DemoPorts(0, 0, 0, 0),
                            settings_overrides={"gateway_mfa_max_failures": MAX_FAILURES}) as running:
        yield running


async def new_context(browser: Browser, **options: object) -> BrowserContext:
    context = await browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=artifact_path(f"e2e-{name}.png"), full_page=True)


async def sign_in_with_password(page: Page, demo: RunningDemo, user: str, *, javascript: bool = True) -> None:
    """From the gateway's /owa/ to the page after Exchange accepted the password."""
    await page.goto(f"{demo.gateway_url}/owa/")
    if javascript:
        # Exchange's logon page reloads itself once with replaceCurrent=1 before it takes input.
        await page.wait_for_url("**/owa/auth/logon.aspx?replaceCurrent=1*")
    else:
        await page.wait_for_url("**/owa/auth/logon.aspx?*")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORDS[user])
    if javascript:
        await page.click("#signInButton")
    else:
        await page.press("#password", "Enter")  # the form's own submit, without Exchange's script


async def expect_mailbox(page: Page, display_name: str) -> None:
    await page.wait_for_url("**/owa/")
    await expect(page.get_by_text(display_name).first).to_be_visible()
    content = await page.content()
    assert any(marker in content for marker in MAILBOX_MARKERS)


def wrong_code(demo: RunningDemo, user: str) -> str:
    """A six-digit code that is none of the codes the simulator accepts right now (±1 step)."""
    current, _ = demo.monosign.state.current_code(user)
    user_record = demo.monosign.state.find_user(user)
    assert user_record is not None
    totp = user_record.totp()
    now = demo.monosign.state.clock()
    accepted = {current, *(totp.at(now + step * totp.interval) for step in (-1, 1))}
    candidates = (f"{digit}" * 6 for digit in range(10))
    return next(candidate for candidate in candidates if candidate not in accepted)


async def test_code_sign_in_from_logon_page_to_mailbox(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await page.goto(f"{demo.gateway_url}/owa/")
    await page.wait_for_url("**/owa/auth/logon.aspx?replaceCurrent=1*")
    await expect(page.locator("#username")).to_be_focused()
    await shot(page, "1-logon")
    await page.fill("#username", "CORP\\bob")
    await page.fill("#password", PASSWORDS["bob"])
    await page.click("#signInButton")

    await page.wait_for_url("**/_gateway/mfa")
    await expect(page.get_by_role("heading", name="Verify it's you")).to_be_visible()
    await expect(page.get_by_text("Signed in as Bob Baker")).to_be_visible()
    await expect(page.get_by_role("button", name="Send request")).to_have_count(0)  # bob has codes only
    cookies = {cookie["name"] for cookie in await context.cookies()}
    assert not {name for name in cookies if name.lower().startswith("cadata")}, cookies
    await shot(page, "2-mfa-code")

    code, _ = demo.monosign.state.current_code("bob")
    await page.get_by_role("textbox", name="One-time code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await expect_mailbox(page, "Bob Baker")
    cookies = {cookie["name"] for cookie in await context.cookies()}
    assert {"cadata", "cadataKey", "cadataIV", "cadataSig", "cadataTTL"} <= cookies
    await shot(page, "3-mailbox")
    await context.close()


async def test_push_with_javascript_continues_by_itself(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "alice")
    await page.wait_for_url("**/_gateway/mfa")
    await page.get_by_role("button", name="Send request").click()
    await expect(page.locator("[data-status-message]")).to_contain_text("Request sent")
    await shot(page, "push-waiting")

    await approve_latest_push(demo.monosign_url, "alice")  # as the user would on the phone
    await expect_mailbox(page, "Alice Archer")  # nobody clicked anything after the approval
    pushes = [call for call in demo.monosign.state.calls if call["operation"] == "start_push"]
    assert len(pushes) == 1  # the page's polling never sends another push
    await context.close()


async def test_push_without_javascript_completes_by_refresh(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser, java_script_enabled=False)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "dave", javascript=False)
    await page.wait_for_url("**/_gateway/mfa")
    await expect(page.get_by_role("heading", name="Enter a one-time code")).to_have_count(0)  # dave: push only
    await page.get_by_role("button", name="Send request").click()
    await expect(page.get_by_role("button", name="I have approved it")).to_be_visible()
    await shot(page, "push-waiting-no-javascript")
    await approve_latest_push(demo.monosign_url, "dave")
    await expect_mailbox(page, "Dave Dawson")  # the page's refresh asked /complete
    await context.close()


async def test_push_without_javascript_completes_with_the_button(demo: RunningDemo, chromium_browser: Browser,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "NO_SCRIPT_REFRESH_SECONDS", 300)  # only the button can move on
    context = await new_context(chromium_browser, java_script_enabled=False)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "dave", javascript=False)
    await page.get_by_role("button", name="Send request").click()
    await approve_latest_push(demo.monosign_url, "dave")
    # At once, before the gateway's poller has seen the answer: the click makes the gateway ask Monosign.
    await page.get_by_role("button", name="I have approved it").click()
    await expect_mailbox(page, "Dave Dawson")
    await context.close()


async def test_wrong_code_shows_the_error_and_focuses_the_field(demo: RunningDemo,
                                                                chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "bob")
    await page.wait_for_url("**/_gateway/mfa")
    await page.get_by_role("textbox", name="One-time code").fill(wrong_code(demo, "bob"))
    await page.get_by_role("button", name="Verify").click()
    await expect(page.locator("#code-error")).to_contain_text("That code is not correct.")
    await expect(page.locator("#code-error")).to_contain_text(f"{MAX_FAILURES - 1} attempts left.")
    code_field = page.get_by_role("textbox", name="One-time code")
    await expect(code_field).to_be_focused()
    await expect(code_field).to_have_attribute("aria-invalid", "true")
    await shot(page, "wrong-code")

    # The right code still works after a wrong one.
    code, _ = demo.monosign.state.current_code("bob")
    await code_field.fill(code)
    await page.get_by_role("button", name="Verify").click()
    await expect_mailbox(page, "Bob Baker")
    await context.close()


async def test_too_many_wrong_codes_show_the_lockout_page(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "bob")
    await page.wait_for_url("**/_gateway/mfa")
    for _ in range(MAX_FAILURES):
        await page.get_by_role("textbox", name="One-time code").fill(wrong_code(demo, "bob"))
        await page.get_by_role("button", name="Verify").click()
        await page.wait_for_load_state()
    await expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    await expect(page.get_by_text("verification is paused")).to_be_visible()
    await shot(page, "locked")

    # Reloading the MFA page does not offer the code field again while locked.
    await page.goto(f"{demo.gateway_url}/_gateway/mfa")
    await expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    await expect(page.get_by_role("textbox", name="One-time code")).to_have_count(0)
    await context.close()


@pytest.mark.parametrize(("user", "fault", "heading", "artifact"), [
    ("carol", None, "No access to this application", "not-assigned"),
    ("alice", FaultMode.REFUSE, "Verification unavailable", "monosign-down"),
    ("alice", FaultMode.CODE_12, "Sign-in is not available", "config-error"),
])
async def test_error_pages(demo: RunningDemo, chromium_browser: Browser, user: str, fault: FaultMode | None,
                           heading: str, artifact: str) -> None:
    if fault is not None:
        await demo.monosign.set_faults(fault)
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, user)
    await expect(page.get_by_role("heading", name=heading)).to_be_visible()
    await expect(page.locator("footer code")).not_to_be_empty()  # the reference for the help desk
    content = await page.content()
    assert not any(marker in content for marker in MAILBOX_MARKERS)
    cookies = {cookie["name"] for cookie in await context.cookies()}
    assert not {name for name in cookies if name.lower().startswith("cadata")}, cookies
    await shot(page, f"error-{artifact}")

    # Whatever the page, the mailbox stays closed to this browser.
    if fault is not None:
        await demo.monosign.clear_faults()
    await page.goto(f"{demo.gateway_url}/owa/")
    await page.wait_for_load_state("networkidle")  # the logon page reloads itself once
    content = await page.content()
    assert not any(marker in content for marker in MAILBOX_MARKERS)
    await context.close()


async def test_turkish_pages_with_accept_language_tr(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser, locale="tr-TR", extra_http_headers={"Accept-Language": "tr"})
    page = await context.new_page()
    await sign_in_with_password(page, demo, "alice")
    await page.wait_for_url("**/_gateway/mfa")
    await expect(page.locator("html")).to_have_attribute("lang", "tr")
    await expect(page.get_by_role("heading", name="Kimliğinizi doğrulayın")).to_be_visible()
    await expect(page.get_by_role("button", name="İstek gönder")).to_be_visible()
    await expect(page.get_by_role("button", name="Doğrula")).to_be_visible()
    await shot(page, "mfa-turkish")

    code, _ = demo.monosign.state.current_code("alice")
    await page.get_by_role("textbox", name="Tek kullanımlık kod").fill(code)
    await page.get_by_role("button", name="Doğrula").click()
    await expect_mailbox(page, "Alice Archer")
    await context.close()


async def test_phone_viewport(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                is_mobile=True, has_touch=True)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "alice")
    await page.wait_for_url("**/_gateway/mfa")
    # Nothing wider than the phone: no sideways scrolling, every control inside the screen.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for name in ("Send request", "Verify"):
        box = await page.get_by_role("button", name=name).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        assert box["height"] >= 32  # big enough to tap
    await shot(page, "mfa-phone")

    await page.get_by_role("button", name="Send request").tap()
    await expect(page.locator("[data-status-message]")).to_be_visible()
    await approve_latest_push(demo.monosign_url, "alice")
    await expect_mailbox(page, "Alice Archer")
    await context.close()


async def test_signed_in_browser_signs_out(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "bob")
    code, _ = demo.monosign.state.current_code("bob")
    await page.get_by_role("textbox", name="One-time code").fill(code)
    await page.get_by_role("button", name="Verify").click()
    await expect_mailbox(page, "Bob Baker")
    await page.goto(f"{demo.gateway_url}/owa/logoff.owa")
    await page.goto(f"{demo.gateway_url}/owa/")
    await page.wait_for_url("**/owa/auth/logon.aspx?*")
    async with httpx.AsyncClient() as control:
        counters = (await control.get(f"{demo.owa.base_url}/_sim/counters")).json()
    assert counters["logoffs"] >= 1
    await context.close()
