"""The demo's intranet in a real browser: the gateway's own sign-in page, password, push, and the
application showing the identity the gateway handed it (issue "the gateway's own sign-in": done when a
person can do exactly this with `./dev demo`).

The application simulator's pages list the identity headers they received; /_app/echo shows every
header, so the test can also check the signed assertion against the gateway's published keys.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from playwright.async_api import Browser, expect

from gateway.demo import DEMO_APP_HOST, DemoPorts, RunningDemo, running_demo
from gateway.pages import renderer as pages
from tests.browser import artifact_path
from tests.demo_users import PASSWORDS
from tests.e2e.owa_client import approve_latest_push

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningDemo]:
    monkeypatch.setattr(pages, "POLL_INTERVAL_MS", 300)
    async with running_demo(DemoPorts(0, 0, 0, 0)) as running:
        yield running


def intranet(demo: RunningDemo, path: str = "/") -> str:
    assert demo.app_url.startswith(f"http://{DEMO_APP_HOST}:")
    return demo.app_url + path


async def test_sign_in_to_the_intranet_with_password_and_push_and_see_your_identity(
        demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()

    await page.goto(intranet(demo, "/reports/q3?view=full"))
    # Not signed in: the gateway's own sign-in page, remembering where the user was going.
    await page.wait_for_url("**/_gateway/signin?rd=**")
    assert page.url.startswith(intranet(demo, "/_gateway/signin"))
    await page.screenshot(path=artifact_path("e2e-portal-signin.png"), full_page=True)
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", PASSWORDS["alice"])
    await page.press("input[name=password]", "Enter")

    await page.wait_for_url("**/_gateway/mfa*")
    await page.get_by_role("button", name="Send request").click()
    await approve_latest_push(demo.monosign_url, "alice")  # as the user would on the phone

    # Back where the user was going, on the application, which sees who the gateway says they are.
    await page.wait_for_url(intranet(demo, "/reports/q3?view=full"))
    await expect(page.get_by_role("row", name="Remote-User alice")).to_be_visible()
    await expect(page.get_by_text("Alice Archer").first).to_be_visible()
    await page.screenshot(path=artifact_path("e2e-portal-signed-in.png"), full_page=True)
    assert demo.app is not None
    assert "/reports/q3" in demo.app.state.paths

    # The assertion on the same request verifies with the gateway's published keys.
    echo = json.loads(await (await page.goto(intranet(demo, "/_app/echo"))).text())  # type: ignore[union-attr]
    received = {name.lower(): value for name, value in echo["headers"]}
    async with httpx.AsyncClient() as client:  # to the listener, as the site's host (httpx cannot resolve .localhost)
        jwks = (await client.get(f"{demo.gateway_url}/_gateway/jwks.json",
                                 headers={"Host": demo.app_url.removeprefix("http://")})).json()
    key = jwt.PyJWKSet.from_dict(jwks).keys[0]
    claims = jwt.decode(received["x-monosign-assertion"], key=key.key, algorithms=["ES256"], audience="intranet",
                        issuer=demo.gateway_url)
    assert claims["name"] == "Alice Archer"
    assert received["remote-user"] == "alice"
    assert "msgw" not in received.get("cookie", "")  # the gateway's session never reaches the application

    # /admin is denied even when signed in; signing out ends the session.
    admin = await page.goto(intranet(demo, "/admin/"))
    assert admin is not None
    assert admin.status == 403
    await page.goto(intranet(demo, "/_gateway/signout"))
    await page.goto(intranet(demo, "/"))
    await page.wait_for_url("**/_gateway/signin?rd=**")
    await context.close()


async def test_a_wrong_password_on_the_intranet_never_reaches_the_second_factor(
        demo: RunningDemo, chromium_browser: Browser) -> None:
    context = await chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(intranet(demo, "/"))
    await page.wait_for_url("**/_gateway/signin?rd=**")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", "not-" + PASSWORDS["alice"])
    await page.press("input[name=password]", "Enter")
    await page.wait_for_load_state()
    assert "/_gateway/signin" in page.url
    assert not [call for call in demo.monosign.state.calls if call["operation"] == "start_push"]
    assert demo.app is not None
    assert list(demo.app.state.paths) == []
    await context.close()
