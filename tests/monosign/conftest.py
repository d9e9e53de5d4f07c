"""Fixtures: a Monosign simulator on a free loopback port, and a client pointed at it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from gateway.monosign import CircuitBreaker, MonosignClient
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState
from gateway.sim.monosign_users import demo_users
from tests.logs import capturing_logs

API_KEY = "test-app-id-4f1d"
API_SECRET = "test-app-secret-9c2b7e0a-never-logged"


@pytest.fixture
async def sim() -> AsyncIterator[MonosignSimulator]:
    state = MonosignSimState(demo_users(), api_key=API_KEY, api_secret=API_SECRET, push_ttl=60, lock_after=3)
    async with MonosignSimulator(state) as simulator:
        yield simulator


ClientFactory = Callable[..., MonosignClient]


@pytest.fixture
async def make_client(sim: MonosignSimulator) -> AsyncIterator[ClientFactory]:
    made: list[MonosignClient] = []

    def make(**overrides: Any) -> MonosignClient:
        options: dict[str, Any] = {
            "base_url": sim.url, "api_key": API_KEY, "api_secret": API_SECRET,
            "connect_timeout": 1.0, "timeout": 2.0,
            "breaker": CircuitBreaker(threshold=3, cooldown=30.0),
        }
        options.update(overrides)
        client = MonosignClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> MonosignClient:
    return make_client()


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The product's own logging (JSON, debug level, every library included), parsed line by line."""
    with capturing_logs() as read:
        yield lambda: [json.loads(line) for line in read()]
