"""Number matching in a real browser (Debian's Chromium): the MFA page shows the push's two digits, and
the Monosign simulator's approval page (standing in for the app) asks for them: a wrong number
rejects the push, the right one signs the user in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from gateway.demo import DemoPorts, RunningDemo, running_demo
from gateway.pages import renderer as pages
from tests.browser import artifact_path
from tests.e2e.test_browser_flow import expect_mailbox, new_context, sign_in_with_password

pytestmark = pytest.mark.browser


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningDemo]:
    monkeypatch.setattr(pages, "POLL_INTERVAL_MS", 300)
    async with running_demo(DemoPorts(0, 0, 0, 0),
                            settings_overrides={"gateway_mfa_number_matching": True}) as running:
        yield running


async def test_the_page_shows_the_number_the_app_asks_for(demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await new_context(chromium_browser)
    page = await context.new_page()
    await sign_in_with_password(page, demo, "alice")
    await page.wait_for_url("**/_gateway/mfa")
    await expect(page.locator("[data-push-number]")).to_have_count(0)
    await page.get_by_role("button", name="Send request").click()
    shown = page.locator("[data-push-number]")
    await expect(shown).to_have_text(re.compile(r"^Enter \d\d in the Monofor Identity app\.$"))
    await page.screenshot(path=artifact_path("e2e-number-matching.png"), full_page=True)
    text = await shown.inner_text()
    number = re.search(r"\d\d", text)
    assert number is not None
    [push] = demo.monosign.state.pending_pushes()
    assert push.number_challenge == number.group(0)

    # The "phone": the simulator's page asks for the number; a wrong one rejects the push.
    phone = await context.new_page()
    await phone.goto(f"{demo.monosign_url}/_sim/")
    await phone.get_by_label("Number on the sign-in page").fill(f"{(int(number.group(0)) + 1) % 100:02d}")
    await phone.get_by_role("button", name="Approve", exact=True).click()
    await expect(page.get_by_text("The request was rejected on your phone")).to_be_visible()

    await page.get_by_role("button", name="Send request").click()
    await expect(shown).to_be_visible()
    second = re.search(r"\d\d", await shown.inner_text())
    assert second is not None
    await phone.goto(f"{demo.monosign_url}/_sim/")
    await phone.get_by_label("Number on the sign-in page").fill(second.group(0))
    await phone.get_by_role("button", name="Approve", exact=True).click()
    await expect_mailbox(page, "Alice Archer")
    await context.close()
