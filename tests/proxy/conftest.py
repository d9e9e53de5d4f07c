"""The upstream every proxy test forwards to, and the gateway in front of it with the default settings
(a module that needs other settings defines its own `gateway`), one of each per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.proxy.support import InProcessGateway, Upstream, run_gateway, run_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with run_upstream() as running:
        yield running


@pytest.fixture
async def gateway(upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    async with run_gateway(upstream[0].url) as running:
        yield running
