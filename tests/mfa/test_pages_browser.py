"""The MFA page in a real browser (Chromium): the push wait under the real CSP, with and without JavaScript.

The pages are served by a small aiohttp app on 127.0.0.1 that answers with the renderer's output and
static files and scripts the push status, so these tests check the page's own behaviour (script,
CSP, refresh, keyboard); the wired MFA flow has its own end-to-end tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from gateway.pages import renderer as pages
from gateway.pages.brand import Brand
from gateway.pages.renderer import NO_SCRIPT_REFRESH_SECONDS, PageRenderer

pytestmark = pytest.mark.browser


@dataclass
class PushScript:
    """What the status URL answers, in order; the last answer repeats."""

    answers: list[tuple[int, str]] = field(default_factory=lambda: [(200, "pending"), (200, "approved")])
    polls: int = 0
    completed: int = 0


@pytest.fixture
async def site(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, PushScript]]:
    monkeypatch.setattr(pages, "POLL_INTERVAL_MS", 200)  # ten times faster than in production
    renderer = PageRenderer(Brand(color="#ffcc00"))
    script = PushScript()

    async def mfa(request: web.Request) -> web.Response:
        page = renderer.render(
            "mfa", lang=renderer.pick_language(request.headers.get("Accept-Language")), request_id="req-1",
            display_name="John Smith", methods=["Push", "Totp"], csrf_token="tok", push_state="waiting",
        )
        return web.Response(status=page.status, body=page.body, headers=page.headers)

    async def static(request: web.Request) -> web.Response:
        asset = renderer.static.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        return web.Response(body=asset.body, headers=asset.headers)

    async def status(request: web.Request) -> web.Response:
        code, value = script.answers[min(script.polls, len(script.answers) - 1)]
        script.polls += 1
        return web.Response(status=code, text=json.dumps({"status": value}), content_type="application/json")

    async def complete(request: web.Request) -> web.Response:
        script.completed += 1
        return web.Response(text="<!doctype html><title>done</title><p id=done>done</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/_gateway/mfa", mfa)
    app.router.add_get("/_gateway/static/{name}", static)
    app.router.add_get("/_gateway/mfa/status", status)
    app.router.add_get("/_gateway/mfa/complete", complete)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", script
    finally:
        await runner.cleanup()


async def open_page(browser: Browser, *, javascript: bool = True, locale: str = "en-US") -> tuple[Page, list[str]]:
    context = await browser.new_context(java_script_enabled=javascript, locale=locale)
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(str(error)))
    return page, console


async def test_waiting_page_polls_then_completes(site: tuple[str, PushScript], chromium_browser: Browser) -> None:
    base, script = site
    page, console = await open_page(chromium_browser)
    await page.goto(f"{base}/_gateway/mfa")
    await page.wait_for_url(f"{base}/_gateway/mfa/complete", timeout=15_000)
    assert script.polls == 2
    assert script.completed == 1
    # Nothing was refused by the Content-Security-Policy, and the script raised nothing.
    assert not [line for line in console if "Content Security Policy" in line or "Error" in line], console


@pytest.mark.parametrize("final", ["rejected", "expired"])
async def test_any_final_status_goes_to_complete(site: tuple[str, PushScript], chromium_browser: Browser,
                                                 final: str) -> None:
    base, script = site
    script.answers = [(200, final)]
    page, _ = await open_page(chromium_browser)
    await page.goto(f"{base}/_gateway/mfa")
    await page.wait_for_url(f"{base}/_gateway/mfa/complete", timeout=15_000)
    assert script.polls == 1


async def test_session_gone_goes_to_complete(site: tuple[str, PushScript], chromium_browser: Browser) -> None:
    base, script = site
    script.answers = [(440, "")]
    page, _ = await open_page(chromium_browser)
    await page.goto(f"{base}/_gateway/mfa")
    await page.wait_for_url(f"{base}/_gateway/mfa/complete", timeout=15_000)


async def test_status_failures_say_so_and_keep_trying(site: tuple[str, PushScript], chromium_browser: Browser) -> None:
    base, script = site
    script.answers = [(502, ""), (502, ""), (502, ""), (200, "approved")]
    page, _ = await open_page(chromium_browser)
    await page.goto(f"{base}/_gateway/mfa")
    status = page.locator("[data-status-message]")
    await status.filter(has_text="Checking for your approval failed").wait_for(timeout=10_000)
    await page.wait_for_url(f"{base}/_gateway/mfa/complete", timeout=10_000)
    assert script.polls == 4


@pytest.mark.slow
async def test_without_javascript_the_page_refreshes_to_complete(
    site: tuple[str, PushScript], chromium_browser: Browser
) -> None:
    base, script = site
    page, _ = await open_page(chromium_browser, javascript=False)
    await page.goto(f"{base}/_gateway/mfa")
    await page.wait_for_url(f"{base}/_gateway/mfa/complete", timeout=(NO_SCRIPT_REFRESH_SECONDS + 5) * 1000)
    assert script.polls == 0
    assert script.completed == 1


async def test_without_javascript_the_button_completes(site: tuple[str, PushScript], chromium_browser: Browser) -> None:
    base, script = site
    page, _ = await open_page(chromium_browser, javascript=False, locale="tr-TR")
    await page.goto(f"{base}/_gateway/mfa")
    assert await page.locator("html").get_attribute("lang") == "tr"
    await page.get_by_role("button", name="Onayladım").click()
    # A GET form without fields: the URL ends in "?".
    await page.wait_for_url(f"{base}/_gateway/mfa/complete?", timeout=5_000)
    assert script.completed == 1


async def test_keyboard_reaches_every_control_with_a_visible_focus(
    site: tuple[str, PushScript], chromium_browser: Browser
) -> None:
    base, script = site
    script.answers = [(200, "pending")]
    page, _ = await open_page(chromium_browser)
    await page.goto(f"{base}/_gateway/mfa")
    reached: list[str] = []
    for _ in range(8):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                       return [e.tagName, e.getAttribute('name') || e.textContent.trim(), s.outlineStyle,
                               s.outlineWidth]; }"""
        )
        tag, name, outline_style, outline_width = focused
        reached.append(f"{tag}:{name}")
        if tag != "BODY":
            assert (outline_style, outline_width) == ("solid", "3px"), focused
    assert reached[:6] == ["BUTTON:I have approved it", "BUTTON:Send again", "BUTTON:then",  # "Use a code instead"
                           "INPUT:code", "BUTTON:Verify", "A:Sign out"]
