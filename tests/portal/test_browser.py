"""A portal site's sign-in in a real browser (Debian's Chromium): the form, its pre-session cookie and
the Origin the browser itself sends pass the login-CSRF checks; then the code, and the landing on rd.
The site's host name is mapped to the gateway's loopback listener by Chromium's resolver rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.browser import CHROMIUM_ARGS, artifact_path
from tests.flow.conftest import FlowEnv
from tests.portal.kit import APP_HOST, PASSWORDS, portal_environment
from tests.tools import require_chromium

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[FlowEnv]:
    async with portal_environment(tmp_path) as running:
        yield running


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1"])
        try:
            yield browser
        finally:
            await browser.close()


async def test_sign_in_form_then_code_in_chromium(env: FlowEnv, chromium: Browser) -> None:
    base = f"http://{APP_HOST}:{env.port}"
    context = await chromium.new_context(locale="tr-TR")
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"{base}/_gateway/signin?rd=%2Freports%3Fq%3D1")
    await expect(page.locator("h1")).to_have_text("Giriş yapın")
    await expect(page.locator("#username")).to_be_focused()
    await page.screenshot(path=artifact_path("portal-signin.png"), full_page=True)

    await page.fill("#username", "alice")
    await page.fill("#password", "wrong")
    await page.click("button[type=submit]")
    await expect(page.locator("#signin-error")).to_contain_text("Kullanıcı adı veya parola doğru değil.")

    await page.fill("#password", PASSWORDS["alice"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/_gateway/mfa")
    await page.fill("#code", await env.code("alice"))
    await page.locator("form[action='/_gateway/mfa/verify'] button[type=submit]").click()
    await page.wait_for_url(f"{base}/reports?q=1")
    names = {cookie["name"] for cookie in await context.cookies()}
    assert "msgw" in names
    assert "msgw-signin" not in names  # the pre-session cookie is spent
    await context.close()
