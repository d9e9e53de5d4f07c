"""The upstream every proxy test forwards to (tests.proxy.support.run_upstream), one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.proxy.support import Upstream, run_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with run_upstream() as running:
        yield running
