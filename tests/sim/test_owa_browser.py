"""A real browser (Chromium) signs in to the OWA simulator directly: redirect dance, logon form,
cookies as Chromium stores them, the mailbox page, a canary-protected XHR, and sign-out."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
from playwright.async_api import Browser

from gateway.sim.owa import running_owa_sim
from tests.browser import artifact_path

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000


async def test_browser_signs_in_and_sees_the_mailbox(chromium_browser: Browser) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    # TLS, as in production: Chromium drops SameSite=None cookies that are not Secure.
    async with running_owa_sim(ssl_context=server_context) as sim:
        context = await chromium_browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        visited: list[str] = []
        page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
        try:
            await page.goto(f"{sim.base_url}/owa/", timeout=TIMEOUT_MS)
            # logon.aspx?url=…&reason=0 reloads itself with replaceCurrent=1, as Exchange's flogon.js does.
            await page.wait_for_url("**/owa/auth/logon.aspx?replaceCurrent=1*", timeout=TIMEOUT_MS)
            first_hop = urlsplit(visited[0] if "reason=0" in visited[0] else visited[1])
            assert parse_qs(first_hop.query)["reason"] == ["0"]

            await page.fill("#username", "CORP\\alice")
            await page.fill("#password", "not her password")
            await page.click("#signInButton")
            await page.wait_for_url("**reason=2**", timeout=TIMEOUT_MS)
            error = page.locator("#signInErrorDiv")
            await error.wait_for(timeout=TIMEOUT_MS)
            assert "isn't correct" in await error.inner_text()

            await page.fill("#username", "CORP\\alice")
            await page.fill("#password", "AlicePass1!")
            await page.keyboard.press("Enter")     # the hidden submit button, as users do
            await page.wait_for_url(f"{sim.base_url}/owa/", timeout=TIMEOUT_MS)
            assert await page.inner_text("#meDisplayName") == "Alice Archer"
            assert "Multi-factor sign-in is now required" in await page.inner_text("#messages")
            await page.screenshot(path=str(artifact_path("owa-sim-mailbox.png")), full_page=True)

            stored = {cookie["name"]: cookie for cookie in await context.cookies()}
            for name in ("cadata", "cadataTTL", "cadataKey", "cadataIV", "cadataSig"):
                assert stored[name]["httpOnly"], name
                assert stored[name]["secure"], name
                assert stored[name]["sameSite"] == "None", name
                assert stored[name]["path"] == "/", name
            assert not stored["X-OWA-CANARY"]["httpOnly"]
            assert stored["PBack"]["value"] == "0"
            assert stored["logondata"]["value"] == "acc=1&lgn=CORP\\alice"

            await page.click("#checkMail")       # service.svc with the canary copied from the cookie
            await page.wait_for_function("document.getElementById('checkResult').textContent.length > 0",
                                         timeout=TIMEOUT_MS)
            assert await page.inner_text("#checkResult") == "200 NoError 4 items"

            await page.click("#signOut")
            await page.wait_for_url("**/owa/auth/logoff.aspx?Cmd=logoff&src=exch", timeout=TIMEOUT_MS)
            assert "successfully signed out" in await page.inner_text("#signedOut")
            assert not {c["name"] for c in await context.cookies()} & {"cadata", "cadataTTL", "cadataKey"}
        finally:
            await context.close()

        counters = sim.state.recorder.counters
        assert (counters.logins_ok["alice"], counters.logins_failed["alice"]) == (1, 1)
        assert counters.tampered_cookies == 0
        assert counters.canary_failures == 0
        assert counters.logoffs == 1
        login_posts = [r for r in sim.state.recorder.requests() if r.target == "/owa/auth.owa"]
        assert "PBack" in login_posts[-1].cookie_names
        assert "logondata" in login_posts[-1].cookie_names
