"""Regenerate the README's screenshots (docs/images/*.png) from the demo stack in Chromium.

    .venv/bin/python -m tests.e2e.readme_screenshots

The same steps as the browser tests: Exchange's logon page, the gateway's MFA page (alice: push or
code), the mailbox after the code. Look at the PNGs before committing them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import expect

from gateway.demo import DemoPorts, running_demo
from tests.browser import launch_chromium
from tests.demo_users import PASSWORDS

IMAGES = Path(__file__).resolve().parent.parent.parent / "docs" / "images"
VIEWPORT = {"width": 960, "height": 880}


async def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    async with running_demo(DemoPorts(0, 0, 0, 0)) as demo, launch_chromium() as browser:
        context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{demo.gateway_url}/owa/")
        await page.wait_for_url("**/owa/auth/logon.aspx?replaceCurrent=1*")
        await page.fill("#username", "alice")
        await page.fill("#password", PASSWORDS["alice"])
        await page.screenshot(path=IMAGES / "logon.png")
        await page.click("#signInButton")
        await page.wait_for_url("**/_gateway/mfa")
        await page.screenshot(path=IMAGES / "mfa.png")
        code, _ = demo.monosign.state.current_code("alice")
        await page.get_by_role("textbox", name="One-time code").fill(code)
        await page.get_by_role("button", name="Verify").click()
        await page.wait_for_url("**/owa/")
        await expect(page.get_by_text("Alice Archer").first).to_be_visible()
        await page.screenshot(path=IMAGES / "mailbox.png")
        await context.close()
    for name in ("logon.png", "mfa.png", "mailbox.png"):
        print(f"{IMAGES / name}: {(IMAGES / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
