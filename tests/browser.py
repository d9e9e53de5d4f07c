"""A real browser for tests: Debian's Chromium driven by Playwright.

    async def test_x(chromium_browser: Browser) -> None: ...      # the fixture (tests/conftest.py loads it)
    async with launch_chromium() as browser: ...                 # or the launcher itself

Skips locally when Chromium is missing and fails in CI (tests/tools.py). Screenshots and other
files a human may want to look at go to test-artifacts/ (git-ignored) via artifact_path().
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.tools import require_chromium

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def artifact_path(name: str) -> Path:
    """Where to save a screenshot or trace named `name` (the directory is created)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def chromium_browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as browser:
        yield browser
